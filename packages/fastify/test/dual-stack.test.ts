import dns from 'node:dns'
import net from 'node:net'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectOutcome, listenerClosed } from '../../../test/helpers/http.js'
import { RawClient } from '../../../test/helpers/raw.js'
import { start } from './helpers.js'

/**
 * D16: `listen({ port })` on `localhost` makes Fastify open a second server for the other loopback
 * family (fastify/fastify#7043), reachable only through its private `Symbol('fastify.serverBindings')`.
 * This machine's hosts file maps `localhost` to 127.0.0.1 only, so for these tests `localhost`
 * resolves to 127.0.0.1 and ::1, as on most developer machines and CI images (the Fastify suite
 * tool's --dual-stack does the same). Only that one name changes; both addresses are loopback.
 */
const lookup = dns.lookup
beforeAll(async () => {
  // the precondition: IPv6 loopback works here (a failure here is a failure, not a skip)
  const probe = net.createServer().listen(0, '::1')
  await once(probe, 'listening')
  probe.close()
  const both = [
    { address: '127.0.0.1', family: 4 },
    { address: '::1', family: 6 },
  ]
  const dualStack = function (this: unknown, hostname: string, options: unknown, callback?: unknown): void {
    if (typeof options === 'function') {
      callback = options
      options = undefined
    }
    if (hostname !== 'localhost') {
      ;(lookup as (...args: unknown[]) => void).call(this, hostname, options ?? {}, callback)
      return
    }
    const o = (typeof options === 'number' ? { family: options } : (options ?? {})) as { family?: number | string; all?: boolean }
    const list = both.filter((a) => !o.family || o.family === a.family || o.family === `IPv${a.family}`)
    const cb = callback as (err: Error | null, address: unknown, family?: number) => void
    process.nextTick(() => (o.all ? cb(null, list) : cb(null, list[0]?.address, list[0]?.family)))
  }
  ;(dns as { lookup: unknown }).lookup = dualStack
})
afterAll(() => {
  ;(dns as { lookup: unknown }).lookup = lookup
})

describe('dual stack (D16)', () => {
  it('pins Fastify 5: listen({ port }) on localhost keeps its ::1 server under Symbol(fastify.serverBindings), and the plugin drains both', async () => {
    await using app = await start({}, { host: 'localhost' })
    expect(
      app.fastify
        .addresses()
        .map((a) => (typeof a === 'string' ? a : a.address))
        .sort(),
    ).toEqual(['127.0.0.1', '::1'])
    const symbol = Object.getOwnPropertySymbols(app.fastify).find((s) => s.description === 'fastify.serverBindings')
    expect(symbol).toBeDefined()
    const secondary = (app.fastify as unknown as Record<symbol, unknown[]>)[symbol as symbol]
    expect(secondary).toHaveLength(1)
    expect(app.fastify.graceful.servers).toEqual([app.fastify.server, secondary[0]])
  })

  it('D16.1 fastify.close() waits for a request on ::1 and answers it with Connection: close, closes a half-sent socket there, and refuses new ::1 connections once the listener closed', async () => {
    await using app = await start({ headerGrace: 200 }, { host: 'localhost' })
    const v6 = app.fastify.graceful.servers[1]
    const slow = await RawClient.connect(app.port, { host: '::1' })
    slow.write('GET /slow?ms=400 HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await app.log.waitRan('GET /slow?ms=400')
    const half = await RawClient.connect(app.port, { host: '::1' })
    half.write('GET /fast HTTP/1.1\r\nHost: localhost\r\nX-Slow')

    const v6ListenerClosed = listenerClosed(v6)
    let closedAt = 0
    const closing = app.fastify.close().then(() => {
      closedAt = performance.now()
    })
    await v6ListenerClosed
    // the slow request still runs; its listener no longer takes connections
    expect(await connectOutcome(app.port, '::1')).toBe('ECONNREFUSED')
    expect(await connectOutcome(app.port, '127.0.0.1')).toBe('ECONNREFUSED')

    const halfClosedAt = await half.closed()
    const res = await slow.response(1)
    expect(res.status).toBe(200)
    expect(res.body).toBe('slow')
    expect(res.headers.connection).toBe('close')
    await closing
    expect(closedAt).toBeGreaterThanOrEqual(res.at)
    expect(closedAt).toBeGreaterThanOrEqual(halfClosedAt)
    expect(app.log.ran).toEqual(['GET /slow?ms=400'])
    expect((await app.fastify.graceful.shutdown()).ok).toBe(true)
  })
})
