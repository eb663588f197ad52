import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type { ServerController, ShutdownReport } from '@quiesce/core'
import gracefulDefault, { type FastifyGraceful, type FastifyGracefulOptions, gracefulPlugin, liveness, readiness, requestSignal } from '@quiesce/fastify'
import { describe, expectTypeOf, it } from 'vitest'

describe('@quiesce/fastify', () => {
  it('fastify.graceful is merged into FastifyInstance, read-only', () => {
    expectTypeOf<FastifyInstance['graceful']>().toEqualTypeOf<FastifyGraceful>()
    expectTypeOf<FastifyGraceful>().toMatchTypeOf<ServerController>()
    const fastify = Fastify()
    expectTypeOf(fastify.graceful.shutdown()).toEqualTypeOf<Promise<ShutdownReport>>()
    // the route handlers, on the controller as on every other adapter's, and as named exports
    fastify.get('/ready', fastify.graceful.readiness)
    fastify.get('/live', fastify.graceful.liveness)
    expectTypeOf(fastify.graceful.readiness).toEqualTypeOf<typeof readiness>()
    // @ts-expect-error fastify.graceful is read-only
    fastify.graceful = {} as FastifyGraceful
  })

  it('request.quiesceSignal is merged into FastifyRequest, read-only', () => {
    expectTypeOf<FastifyRequest['quiesceSignal']>().toEqualTypeOf<AbortSignal>()
    const fastify = Fastify()
    fastify.get('/', async (request) => {
      expectTypeOf(request.quiesceSignal).toEqualTypeOf<AbortSignal>()
      expectTypeOf(requestSignal(request)).toEqualTypeOf<AbortSignal>()
      // @ts-expect-error read-only
      request.quiesceSignal = new AbortController().signal
      return 'ok'
    })
  })

  it('the plugin takes the core options', async () => {
    expectTypeOf(gracefulDefault).toEqualTypeOf(gracefulPlugin)
    expectTypeOf<FastifyGracefulOptions['timeout']>().toEqualTypeOf<number | undefined>()
    const fastify = Fastify()
    await fastify.register(gracefulPlugin, { timeout: 10_000 })
    // @ts-expect-error timeout is a number
    await fastify.register(gracefulPlugin, { timeout: '10s' })
    fastify.get('/ready', readiness)
    fastify.get('/live', liveness)
  })
})
