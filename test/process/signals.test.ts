import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { get } from '../helpers/http.js'
import { RawClient } from '../helpers/raw.js'

describe('signals and exit codes', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`D9.4 ${signal} with idle keep-alive sockets (a browser's) exits 0 within a few hundred ms`, async () => {
      await using child = new Child('plain.mjs')
      const { port } = await child.ready()
      const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(port)))
      for (const c of clients) c.get('/fast')
      await Promise.all(clients.map((c) => c.response()))
      const t0 = performance.now()
      child.kill(signal)
      const exit = await child.exited
      expect(exit.code).toBe(0)
      expect(exit.signal).toBeNull()
      expect(performance.now() - t0).toBeLessThan(1500)
      expect(exit.stdout).toMatch(new RegExp(`shutdown \\(signal ${signal}\\) drained`))
    })
  }

  it('D9.5 SIGINT with an in-flight slow request exits 0 after the response was delivered complete', async () => {
    await using child = new Child('plain.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow?ms=400')
    await child.says('started /slow?ms=400')
    child.kill('SIGINT')
    await child.says('draining server (SIGINT)')
    const r = await c.response()
    expect(r.status).toBe(200)
    expect(r.body).toBe('slow')
    expect(r.headers.connection).toBe('close')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toContain('1 request completed')
  })

  it('D9.6 a second signal forces at once: the running request is aborted ("shutdown deadline") and the process exits 1', async () => {
    await using child = new Child('long-timeout.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/never')
    await child.says('started /never')
    child.kill('SIGTERM')
    await child.says('draining server (SIGTERM)')
    const t0 = performance.now()
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(exit.stdout).toContain('aborted: ERR_QUIESCE_SHUTDOWN_DEADLINE')
    expect(exit.stdout).toMatch(/forced: GET \/never/)
  })

  it('D6.13 D9 the deadline forces a never-ending request, names it, and the process exits 1', async () => {
    await using child = new Child('short-timeout.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/never')
    await child.says('started /never')
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toContain('aborted: ERR_QUIESCE_SHUTDOWN_DEADLINE')
    expect(exit.stdout).toMatch(/FORCED at the deadline.*forced: GET \/never \(http\/1\.1, running/)
  })

  it('D9.7 a leaked setInterval does not keep the process alive after a signal', async () => {
    await using child = new Child('stray-timer.mjs')
    await child.ready()
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.code).toBe(0)
  })

  it("D9.8 signals: false leaves the signal alone (Node's default: the process dies by the signal)", async () => {
    await using child = new Child('no-signals.mjs')
    await child.ready()
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.signal).toBe('SIGTERM')
    expect(exit.stdout).not.toContain('draining')
  })

  it('D9.9 two servers in one process both drain on one signal', async () => {
    await using child = new Child('two-servers.mjs')
    const { ports } = await child.ready<{ ports: number[] }>()
    const [a, b] = await Promise.all(ports.map((p) => RawClient.connect(p)))
    a?.get('/slow?ms=300')
    await child.says('started /slow?ms=300')
    b?.get('/slow?ms=301')
    await child.says('started /slow?ms=301')
    child.kill('SIGTERM')
    const [ra, rb] = await Promise.all([a?.response(), b?.response()])
    expect(ra?.body).toBe('slow')
    expect(rb?.body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout.match(/shutdown \(signal SIGTERM\) drained/g)?.length).toBe(2)
  })

  it('D9.10 Fastify and Express in one process: one SIGTERM drains both, each in-flight request completes, exit 0', async () => {
    await using child = new Child('frameworks.mjs')
    const { ports } = await child.ready<{ ports: number[] }>()
    const [f, e] = await Promise.all(ports.map((p) => RawClient.connect(p)))
    f?.get('/slow')
    await child.says('started fastify /slow')
    e?.get('/slow')
    await child.says('started express /slow')
    child.kill('SIGTERM')
    const [rf, re] = await Promise.all([f?.response(), e?.response()])
    expect(rf?.body).toBe('fastify slow')
    expect(re?.body).toBe('express slow')
    expect(rf?.headers.connection).toBe('close')
    expect(re?.headers.connection).toBe('close')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout.match(/shutdown \((signal SIGTERM|framework)\) drained/g)?.length).toBe(2)
  })

  it('D18.1 a drain longer than a second logs progress about once a second, and the report is one line that reaches the pipe', async () => {
    await using child = new Child('plain.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow?ms=2300')
    await child.says('started /slow?ms=2300')
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    const progress = exit.stdout.split('\n').filter((l) => l.includes('quiesce: draining — '))
    expect(progress.length).toBeGreaterThanOrEqual(2)
    expect(progress.length).toBeLessThanOrEqual(3)
    expect(progress[0]).toMatch(/1 request in flight, 1 connection open, [\d.]+ s left/)
    const report = exit.stdout.split('\n').filter((l) => l.includes('quiesce: shutdown ('))
    expect(report).toHaveLength(1)
    // the last line written before exit is the report: nothing was cut by process.exit
    expect(exit.stdout.trimEnd().split('\n').at(-1)).toContain('quiesce: shutdown (')
  })
})

describe('cleanup hooks', () => {
  it('D8.1 hooks run after the server closed, last registered first; a hanging one is cut at its limit, a throwing one is reported, the others run; exit 1', async () => {
    await using child = new Child('hooks.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow?ms=200')
    await child.says('started /slow?ms=200')
    child.kill('SIGTERM')
    const r = await c.response()
    expect(r.body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    const lines = exit.stdout.split('\n')
    const order = lines.filter((l) => l.startsWith('hook ')).map((l) => l.replace(/ \(aborted=.*/, ''))
    expect(order).toEqual(['hook last start', 'hook last done', 'hook throws start', 'hook hangs start', 'hook first start', 'hook first done'])
    const closedAt = lines.findIndex((l) => l.includes('shutdown ('))
    expect(closedAt).toBeGreaterThan(lines.findIndex((l) => l === 'hook first done'))
    expect(exit.stdout).toMatch(/hook "hangs" did not finish within 200 ms/)
    expect(exit.stdout).toMatch(/hook "throws" failed: hook throws broke/)
    expect(exit.stdout).toMatch(/hooks: last ok .*, throws FAILED .*, hangs TIMED OUT .*, first ok/)
  })
})

describe('fatal errors', () => {
  it("D11.5 an uncaught exception from a timer lets another user's in-flight request finish, runs the hooks and exits 1", async () => {
    await using child = new Child('db-hook.mjs')
    const { port } = await child.ready()
    const other = await RawClient.connect(port)
    other.get('/slow?ms=400')
    await child.says('started /slow?ms=400')
    expect((await get(port, '/crash-later?ms=50')).body).toBe('scheduled')
    const r = await other.response()
    expect(r.status).toBe(200)
    expect(r.body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toMatch(/error: quiesce: uncaught exception — draining and exiting 1: Error: boom from a timer\n\s+at /)
    expect(exit.stdout).toContain('hook db done')
    expect(exit.stdout).toContain('shutdown (fatal)')
  })

  it('D11.6 an unhandled rejection is handled the same way', async () => {
    await using child = new Child('plain.mjs')
    const { port } = await child.ready()
    expect((await get(port, '/reject-later')).body).toBe('scheduled')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toMatch(/unhandled rejection — draining and exiting 1: Error: rejected from a timer/)
  })

  it("D11.7 inside a test runner's worker the fatal handler is off unless asked for (the runner reports the error)", async () => {
    await using child = new Child('plain.mjs', { VITEST: 'true' })
    const { port } = await child.ready()
    await get(port, '/crash-later?ms=10')
    const exit = await child.exited
    // Node's own behaviour: the process dies at once with the error on stderr, quiesce stays out of it
    expect(exit.code).toBe(1)
    expect(exit.stdout).not.toContain('draining and exiting')
    expect(exit.stderr).toContain('boom from a timer')
  })
})
