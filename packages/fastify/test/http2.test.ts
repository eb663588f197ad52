import http2 from 'node:http2'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { gracefulPlugin } from '@quiesce/fastify'
import { h2request } from '../../../test/helpers/http.js'
import { defaults, sleep } from './helpers.js'

const MAX_STREAM_ID = 2 ** 31 - 1
const { NGHTTP2_NO_ERROR } = http2.constants

async function h2cApp(fastifyOptions: { return503OnClosing?: boolean } = {}) {
  const fastify = Fastify({ http2: true, logger: false, ...fastifyOptions })
  await fastify.register(gracefulPlugin, defaults)
  const ran: string[] = []
  fastify.addHook('preHandler', async (request) => {
    ran.push(request.url)
  })
  fastify.get('/fast', async () => 'fast')
  fastify.get('/slow', async () => {
    await sleep(300)
    return 'slow'
  })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const port = (fastify.server.address() as AddressInfo).port
  return { fastify, ran, origin: `http://127.0.0.1:${port}` }
}

describe('Fastify with http2: true (h2c)', () => {
  it('D12.18 fastify.close() drains: a stream in flight completes (no Connection header), the session gets the two-step GOAWAY, and close() resolves after it', async () => {
    const { fastify, ran, origin } = await h2cApp()
    const client = http2.connect(origin)
    const goaways: Array<[number, number]> = []
    client.on('goaway', (code: number, last: number) => {
      goaways.push([code, last])
    })
    const slow = h2request(client, '/slow')
    await once(fastify.server, 'stream')
    expect(fastify.graceful.stats()).toMatchObject({ http2Sessions: 1, requestsInFlight: 1 })
    let closedAt = 0
    const closing = fastify.close().then(() => {
      closedAt = performance.now()
    })
    const res = await slow
    const answeredAt = performance.now()
    expect(res).toMatchObject({ status: 200, body: 'slow' })
    expect(res.headers.connection).toBeUndefined()
    await closing
    expect(closedAt).toBeGreaterThanOrEqual(answeredAt)
    expect(goaways[0]).toEqual([NGHTTP2_NO_ERROR, MAX_STREAM_ID])
    expect(goaways.at(-1)).toEqual([NGHTTP2_NO_ERROR, 1])
    expect(ran).toEqual(['/slow'])
    const report = await fastify.graceful.shutdown()
    expect(report).toMatchObject({ reason: 'framework', ok: true, requestsCompleted: 1, forced: [] })
    client.close()
  })

  // Node ≥ 24's Http2Server.close(), which Fastify's close calls once the announce phase is over,
  // closes every session itself in one step (closeAllSessions): a stream crossing that GOAWAY is
  // refused (REFUSED_STREAM: never processed, safe to retry), with or without quiesce — Fastify's
  // own suite runs its two tests of this case on Node < 24 only. Before 24, quiesce's idle grace
  // for sessions (D1) lets the stream in, and Fastify answers it.
  const nodeClosesSessions = Number(process.versions.node.split('.')[0]) >= 24
  it(`D12.19 a request sent on an idle session at the moment fastify.close() starts is ${nodeClosesSessions ? "refused by Node's own session close (Node ≥ 24)" : 'processed: Fastify answers it (503 with Retry-After while closing, or 200 with return503OnClosing: false)'}`, async () => {
    for (const [options, expected] of [
      [{}, 503],
      [{ return503OnClosing: false }, 200],
    ] as const) {
      const { fastify, origin } = await h2cApp(options)
      const client = http2.connect(origin)
      await once(client, 'connect')
      // the client sends its HEADERS as the server starts closing: they cross the drain's start
      const answer = h2request(client, '/fast').then(
        (r) => `${r.status}${r.headers['retry-after'] === undefined ? '' : ` retry-after ${String(r.headers['retry-after'])}`}`,
        (err: Error) => /NGHTTP2_\w+/.exec(err.message)?.[0] ?? err.message,
      )
      const closing = fastify.close()
      // Fastify's closing 503 carries quiesce's Retry-After on HTTP/2 too
      expect(await answer).toBe(nodeClosesSessions ? 'NGHTTP2_REFUSED_STREAM' : expected === 503 ? '503 retry-after 1' : '200')
      client.close()
      await closing
      expect((await fastify.graceful.shutdown()).ok).toBe(true)
    }
  })
})
