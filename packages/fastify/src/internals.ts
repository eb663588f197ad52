import type { FastifyInstance } from 'fastify'
import type { AnyServer } from '@quiesce/core'

/**
 * Every touch of a Fastify private shape lives here, pinned by `test/dual-stack.test.ts` (the
 * installed Fastify) and by `scripts/fastify-range.mjs` in CI on the lowest (5.0.0) and the highest
 * Fastify 5 of the peer range.
 */

/** Fastify's private list of the extra servers `listen()` opens for `localhost` (fastify/fastify#7043, D16). */
const SERVER_BINDINGS = 'fastify.serverBindings'

/**
 * The servers Fastify opened besides `fastify.server`, found by the description of the private
 * symbol Fastify keeps them under; `null` if a Fastify version no longer has it.
 */
export function secondaryServers(fastify: FastifyInstance): AnyServer[] | null {
  for (let o: object | null = fastify; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    for (const symbol of Object.getOwnPropertySymbols(o)) {
      if (symbol.description !== SERVER_BINDINGS) continue
      const list = (o as Record<symbol, unknown>)[symbol]
      return Array.isArray(list) ? (list as AnyServer[]) : null
    }
  }
  return null
}
