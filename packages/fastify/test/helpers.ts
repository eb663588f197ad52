import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { gracefulPlugin, type FastifyGracefulOptions } from '@quiesce/fastify'
import { AppLog } from '../../../test/conformance/fixtures/app.js'

/** Options every test starts with: no process signals, no logs, a test-sized deadline. */
export const defaults: FastifyGracefulOptions = { signals: false, logger: false, timeout: 3000 }

export interface TestApp extends AsyncDisposable {
  readonly fastify: FastifyInstance
  readonly port: number
  readonly log: AppLog
}

/**
 * A Fastify app with the plugin registered first and a few routes: `/fast`, `/slow?ms=N`, and
 * `/never`, which answers only when its quiesce signal aborts; `setup` adds more. Listens on
 * 127.0.0.1:0 unless `host` says otherwise. Disposal closes it with a short deadline, whatever the test did.
 */
export async function start(
  options: FastifyGracefulOptions = {},
  more: { fastify?: FastifyServerOptions; host?: string; setup?: (fastify: FastifyInstance, log: AppLog) => void } = {},
): Promise<TestApp> {
  const log = new AppLog()
  const fastify = Fastify({ logger: false, ...more.fastify })
  await fastify.register(gracefulPlugin, { ...defaults, ...options })
  fastify.addHook('preHandler', async (request) => {
    log.push('ran', `${request.method} ${request.url}`)
  })
  fastify.get('/fast', async () => 'fast')
  fastify.get('/slow', async (request) => {
    await sleep(Number(new URL(request.url, 'http://x').searchParams.get('ms') ?? 200))
    log.push('finished', `${request.method} ${request.url}`)
    return 'slow'
  })
  fastify.get('/never', async (request) => {
    const signal = request.quiesceSignal
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
    log.abort(request.url, (signal.reason as { code?: string }).code ?? String(signal.reason))
    return 'aborted'
  })
  more.setup?.(fastify, log)
  await fastify.listen({ port: 0, host: more.host ?? '127.0.0.1' })
  const port = (fastify.server.address() as AddressInfo).port
  return {
    fastify,
    port,
    log,
    async [Symbol.asyncDispose]() {
      if (fastify.graceful.state !== 'closed') {
        await fastify.graceful.shutdown({ timeout: 200 })
      }
    },
  }
}

export { get } from '../../../test/helpers/http.js'

/** A logger that keeps what it is told, for the assertions on warnings and reports. */
export function captureLogger(): { info(m: string): void; warn(m: string): void; error(m: string): void; lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = []
  return {
    lines,
    info: (m: string) => {
      lines.push(['info', m])
    },
    warn: (m: string) => {
      lines.push(['warn', m])
    },
    error: (m: string) => {
      lines.push(['error', m])
    },
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
