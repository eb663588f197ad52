import { once } from 'node:events'
import { Writable } from 'node:stream'
import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { gracefulPlugin, readiness, requestSignal, type FastifyGraceful, type ShutdownReport } from '@quiesce/fastify'
import defaultExport from '@quiesce/fastify'
import { requestStarted } from '../../../test/helpers/http.js'
import { RawClient } from '../../../test/helpers/raw.js'
import { captureLogger, defaults, get, start } from './helpers.js'

describe('the plugin', () => {
  it("decorates fastify.graceful (the controller) and request.quiesceSignal; request.signal stays Fastify's own", async () => {
    const seen: Array<Record<string, unknown>> = []
    await using app = await start(
      {},
      {
        setup(fastify) {
          fastify.get('/signals', async (request) => {
            let assigned: unknown = null
            try {
              ;(request as unknown as { signal: unknown }).signal = new AbortController().signal
            } catch (err) {
              assigned = err
            }
            seen.push({
              same: request.quiesceSignal === requestSignal(request),
              stable: request.quiesceSignal === request.quiesceSignal,
              isAbortSignal: request.quiesceSignal instanceof AbortSignal,
              notFastifys: request.quiesceSignal !== request.signal,
              fastifysIsSignal: request.signal instanceof AbortSignal,
              assigningFastifysThrows: assigned instanceof TypeError,
            })
            return 'ok'
          })
        },
      },
    )
    expect(defaultExport).toBe(gracefulPlugin)
    const g = app.fastify.graceful
    expect(g.state).toBe('running')
    expect(g.ready).toBe(true)
    expect(g.draining).toBeInstanceOf(AbortSignal)
    expect(g.draining.aborted).toBe(false)
    expect(g.servers).toEqual([app.fastify.server])
    expect(g.stats()).toMatchObject({ state: 'running', requestsInFlight: 0, http2Sessions: 0 })
    for (const method of ['shutdown', 'pause', 'resume', 'onShutdown', 'beforeShutdown', 'attach', 'stats'] as const) {
      expect(typeof g[method]).toBe('function')
    }
    expect((await get(app.port, '/signals')).status).toBe(200)
    expect(seen).toEqual([{ same: true, stable: true, isAbortSignal: true, notFastifys: true, fastifysIsSignal: true, assigningFastifysThrows: true }])

    // the types, checked by `tsc -p tsconfig.test.json`
    expectTypeOf(app.fastify.graceful).toEqualTypeOf<FastifyGraceful>()
    expectTypeOf(app.fastify.graceful.shutdown).returns.resolves.toEqualTypeOf<ShutdownReport>()
    expectTypeOf<FastifyRequest['quiesceSignal']>().toEqualTypeOf<AbortSignal>()
    expectTypeOf<FastifyRequest['signal']>().toEqualTypeOf<AbortSignal>()
    expectTypeOf(requestSignal).parameter(0).toEqualTypeOf<FastifyRequest>()
  })

  it('fastify.graceful.shutdown() closes Fastify: its onClose hooks run, the listener closes, and every call returns one promise resolving with the report', async () => {
    const order: string[] = []
    const fastify = Fastify({ logger: false })
    await fastify.register(gracefulPlugin, defaults)
    fastify.addHook('onClose', async () => {
      order.push('fastify onClose')
    })
    fastify.graceful.onShutdown(
      () => {
        order.push('quiesce onShutdown')
      },
      { name: 'db' },
    )
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    const first = fastify.graceful.shutdown()
    expect(fastify.graceful.shutdown()).toBe(first)
    const report = await first
    order.push('resolved')
    expect(report).toMatchObject({ reason: 'manual', ok: true, forced: [] })
    expect(report.hooks.map((h) => h.name)).toEqual(['db', 'fastify onClose hooks'])
    expect(order).toHaveLength(3)
    expect(order.at(-1)).toBe('resolved')
    expect(fastify.server.listening).toBe(false)
    expect(fastify.graceful.state).toBe('closed')
    expect(await fastify.graceful.shutdown()).toBe(report)
    // closing again is harmless
    await fastify.close()
  })

  it("fastify.close() resolves after the drain's report, with the controller closed", async () => {
    await using app = await start()
    const c = await RawClient.connect(app.port)
    c.get('/slow?ms=200')
    await app.log.waitRan('GET /slow?ms=200')
    const closing = app.fastify.close()
    expect((await c.response()).headers.connection).toBe('close')
    await closing
    expect(app.fastify.graceful.state).toBe('closed')
    expect((await app.fastify.graceful.shutdown()).reason).toBe('framework')
  })

  it("D3.5 return503OnClosing (Fastify's default): a request during the drain gets Fastify's 503 with quiesce's Retry-After and Connection: close; its handler does not run", async () => {
    await using app = await start({ retryAfter: 4, idleGrace: 2000 })
    const c = await RawClient.connect(app.port)
    c.get('/fast?warm')
    const warm = await c.response()
    expect(warm.headers['retry-after']).toBeUndefined()
    const holder = await RawClient.connect(app.port)
    holder.get('/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    const draining = once(app.fastify.graceful.draining, 'abort')
    const closing = app.fastify.close()
    await draining
    c.get('/fast?during')
    const during = await c.response(2)
    expect(during.status).toBe(503)
    expect(during.headers['retry-after']).toBe('4')
    expect(during.headers.connection).toBe('close')
    expect(app.log.ran).not.toContain('GET /fast?during')
    const slow = await holder.response()
    expect(slow.status).toBe(200)
    expect(slow.headers['retry-after']).toBeUndefined()
    await closing
  })

  it('D3.6 with return503OnClosing: false a request during the drain is served, with Connection: close and no Retry-After', async () => {
    await using app = await start({ idleGrace: 2000 }, { fastify: { return503OnClosing: false } })
    const c = await RawClient.connect(app.port)
    c.get('/fast?warm')
    await c.response()
    const holder = await RawClient.connect(app.port)
    holder.get('/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    const draining = once(app.fastify.graceful.draining, 'abort')
    const closing = app.fastify.close()
    await draining
    c.get('/fast?during')
    const during = await c.response(2)
    expect(during.status).toBe(200)
    expect(during.body).toBe('fast')
    expect(during.headers.connection).toBe('close')
    expect(during.headers['retry-after']).toBeUndefined()
    await holder.response()
    await closing
  })

  it('forceCloseConnections: true is warned about at registration, and the request it cuts is named in the report as forced', async () => {
    const logger = captureLogger()
    await using app = await start({ logger }, { fastify: { forceCloseConnections: true } })
    expect(logger.lines.filter(([level, m]) => level === 'warn' && m.includes('forceCloseConnections: true'))).toHaveLength(1)
    const c = await RawClient.connect(app.port)
    c.get('/never')
    await app.log.waitRan('GET /never')
    const t0 = performance.now()
    const report = await app.fastify.graceful.shutdown()
    await c.closed()
    // cut when the listener closed, as Fastify does, not at the 3 s deadline
    expect(performance.now() - t0).toBeLessThan(1500)
    expect(report.ok).toBe(false)
    expect(report.timedOut).toBe(false)
    expect(report.forced).toContainEqual(expect.objectContaining({ kind: 'request', method: 'GET', url: '/never', protocol: 'http/1.1' }))
    expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    expect(c.responses).toEqual([])
  })

  it("D13.5 pause({ mode: 'reject' | 'hold' }) acts before Fastify sees the request: before any hook and the handler", async () => {
    const routeHooks: string[] = []
    await using app = await start(
      {},
      {
        setup(fastify) {
          fastify.get(
            '/hooked',
            {
              onRequest: async (request) => {
                routeHooks.push(request.url)
              },
            },
            async () => 'hooked',
          )
        },
      },
    )
    await app.fastify.graceful.pause({ mode: 'reject' })
    const rejected = await get(app.port, '/hooked?reject')
    expect(rejected.status).toBe(503)
    expect(rejected.headers['retry-after']).toBe('1')
    expect(rejected.headers.connection).toBe('close')
    expect(routeHooks).toEqual([])

    await app.fastify.graceful.pause({ mode: 'hold', maxWait: 5000 })
    // Node's own channel: the server has parsed the request (it is then held in quiesce's dispatch)
    const arrived = requestStarted('/hooked?hold')
    const held = get(app.port, '/hooked?hold')
    await arrived
    expect(routeHooks).toEqual([])
    expect(app.fastify.graceful.stats().requestsInFlight).toBe(1)
    await app.fastify.graceful.resume()
    const served = await held
    expect(served.status).toBe(200)
    expect(served.body).toBe('hooked')
    expect(routeHooks).toEqual(['/hooked?hold'])
  })

  it('D4.8 readiness answers 200 while running and paused, 503 with Retry-After once draining starts', async () => {
    await using app = await start(
      { readinessDelay: 300 },
      {
        fastify: { return503OnClosing: false },
        setup(fastify) {
          fastify.get('/ready', readiness)
        },
      },
    )
    expect((await get(app.port, '/ready')).status).toBe(200)
    await app.fastify.graceful.pause({ mode: 'refuse' })
    await app.fastify.graceful.resume()
    expect((await get(app.port, '/ready')).status).toBe(200)
    const report = app.fastify.graceful.shutdown()
    const notReady = await get(app.port, '/ready')
    expect(notReady.status).toBe(503)
    expect(notReady.headers['retry-after']).toBe('1')
    expect(notReady.headers['cache-control']).toBe('no-store')
    expect((await report).ok).toBe(true)
  })

  it("the logger defaults to fastify.log: the drain and its one-line report go through Fastify's logger", async () => {
    const lines: Array<{ level: number; msg: string }> = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string })
        done()
      },
    })
    const fastify = Fastify({ logger: { level: 'info', stream } })
    await fastify.register(gracefulPlugin, { signals: false, timeout: 3000 })
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    await fastify.close()
    const ours = lines.filter((l) => l.msg.startsWith('quiesce:')).map((l) => [l.level, l.msg.replace(/\d+(\.\d+)? m?s/g, 'T')])
    expect(ours).toEqual([
      [30, 'quiesce: draining fastify (framework), deadline in T'],
      [30, expect.stringMatching(/^quiesce: shutdown \(framework\) drained in T — 0 requests completed/)],
    ])
  })

  it("a logger that throws (its stream already ended) does not break the drain; an instance that never listened closes without info lines, as Fastify's own close", async () => {
    const calls: string[] = []
    const broken = {
      info: (m: string) => {
        calls.push(m)
        throw new Error('SonicBoom destroyed')
      },
      warn: (m: string) => {
        calls.push(m)
        throw new Error('SonicBoom destroyed')
      },
      error: (m: string) => {
        calls.push(m)
        throw new Error('SonicBoom destroyed')
      },
    }
    const listened = Fastify({ logger: false })
    await listened.register(gracefulPlugin, { ...defaults, logger: broken })
    await listened.listen({ port: 0, host: '127.0.0.1' })
    await listened.close()
    expect(calls.map((m) => m.split(' (')[0])).toEqual(['quiesce: draining fastify', 'quiesce: shutdown'])
    expect((await listened.graceful.shutdown()).ok).toBe(true)

    calls.length = 0
    const injectOnly = Fastify({ logger: false })
    await injectOnly.register(gracefulPlugin, { ...defaults, logger: broken })
    injectOnly.get('/', async () => 'ok')
    expect((await injectOnly.inject('/')).body).toBe('ok')
    await injectOnly.close()
    expect(calls).toEqual([])
    expect(injectOnly.graceful.state).toBe('closed')
  })

  it('bad options are a TypeError naming the option, from register()', async () => {
    const a = Fastify({ logger: false })
    await expect(a.register(gracefulPlugin, { ...defaults, timeout: -1 })).rejects.toThrow(TypeError)
    await expect(Fastify({ logger: false }).register(gracefulPlugin, { ...defaults, timeout: Number.NaN })).rejects.toThrow(/timeout/)
    await expect(Fastify({ logger: false }).register(gracefulPlugin, { ...defaults, tiemout: 5 } as never)).rejects.toThrow(/tiemout/)
    await expect(Fastify({ logger: false }).register(gracefulPlugin, { ...defaults, logger: { info() {}, error() {} } as never })).rejects.toThrow(
      /logger\.warn/,
    )
  })

  it('registering the plugin twice for one server fails with a clear error (same instance, or two encapsulated contexts)', async () => {
    const twice = Fastify({ logger: false })
    await twice.register(gracefulPlugin, defaults)
    await expect(twice.register(gracefulPlugin, defaults)).rejects.toThrow(/registered twice/)

    const siblings = Fastify({ logger: false })
    void siblings.register(async (child) => {
      await child.register(gracefulPlugin, defaults)
    })
    void siblings.register(async (child) => {
      await child.register(gracefulPlugin, defaults)
    })
    await expect(siblings.ready()).rejects.toThrow(/registered twice/)
  })

  it('D9.3 process signal handlers are installed once however many instances register the plugin, and removed with the last; no upgrade listener is added', async () => {
    const before = process.listenerCount('SIGTERM')
    const apps = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const fastify = Fastify({ logger: false })
        await fastify.register(gracefulPlugin, { logger: false, timeout: 1000 })
        await fastify.listen({ port: 0, host: '127.0.0.1' })
        return fastify
      }),
    )
    expect(process.listenerCount('SIGTERM')).toBe(before === 0 ? 1 : before)
    expect(process.listenerCount('SIGINT')).toBeGreaterThanOrEqual(1)
    const plain = Fastify({ logger: false })
    await plain.listen({ port: 0, host: '127.0.0.1' })
    for (const fastify of apps) expect(fastify.server.listenerCount('upgrade')).toBe(plain.server.listenerCount('upgrade'))
    await Promise.all([...apps.map((f) => f.close()), plain.close()])
    expect(process.listenerCount('SIGTERM')).toBe(before)
  })
})
