import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { RawClient } from '../helpers/raw.js'

describe('process behaviour at the seams (contract revision 3)', () => {
  it('D1.5 only idle keep-alive sockets left at the deadline (idleGrace = timeout, the proxy advice): the process exits 0', async () => {
    await using child = new Child('idle-grace-is-timeout.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/fast')
    expect((await c.response()).status).toBe(200)
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toMatch(/0 forced/)
  })

  it("D9.2 the logger's flush(cb) is called and awaited before the exit: the final report line reaches stdout", async () => {
    await using child = new Child('flush-logger.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow')
    await c.until(() => c.socket.bytesWritten > 0, 'request sent')
    child.kill('SIGTERM')
    expect((await c.response()).body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toMatch(/info: quiesce: shutdown \(signal SIGTERM\) drained .*\nflushed\n$/)
  })

  it('D9.14 a logger whose flush takes 400 ms (no supervisor budget) still gets the report line out before the exit', async () => {
    await using child = new Child('flush-logger.mjs', {}, ['400'])
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow')
    await c.until(() => c.socket.bytesWritten > 0, 'request sent')
    child.kill('SIGTERM')
    expect((await c.response()).body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toMatch(/info: quiesce: shutdown \(signal SIGTERM\) drained .*\nflushed\n$/)
  })

  it('D11.3 with exit: false, an uncaught exception still drains the other requests and exits 1', async () => {
    await using child = new Child('fatal-no-exit.mjs')
    const { port } = await child.ready()
    const other = await RawClient.connect(port)
    other.get('/slow')
    const c = await RawClient.connect(port)
    c.get('/crash')
    expect((await c.response()).body).toBe('scheduled')
    expect((await other.response()).body).toBe('slow')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toContain('uncaught exception — draining and exiting 1')
  })

  for (const order of ['after', 'before'] as const) {
    it(`D20.7 a library that re-sends SIGTERM to its own process after its cleanup (installed ${order} quiesce) does not force the drain: the request in flight finishes, exit 0`, async () => {
      await using child = new Child('resent-signal.mjs', { ORDER: order })
      const { port } = await child.ready()
      const c = await RawClient.connect(port)
      c.get('/slow')
      await child.says('started /slow')
      child.kill('SIGTERM')
      await child.says('library: re-sending')
      const r = await c.response()
      expect(r).toMatchObject({ status: 200, body: 'slow' })
      expect(r.headers.connection).toBe('close')
      const exit = await child.exited
      expect(exit.code).toBe(0)
      expect(exit.stdout).toContain('re-sent by the handler that took the first one')
      expect(exit.stdout).not.toContain('forcing')
    })
  }

  it("D20.8 a person's second Ctrl+C (no other handler) still forces at once", async () => {
    await using child = new Child('long-timeout.mjs')
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/never')
    await child.says('started /never')
    child.kill('SIGINT')
    await child.says('draining server (SIGINT)')
    child.kill('SIGINT')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toContain('forcing the shutdown now')
  })

  it('D9.12 a second signal while a cleanup hook runs cuts it at once (its signal aborts), not at its limit; exit 1', async () => {
    await using child = new Child('second-signal-hooks.mjs')
    await child.ready()
    child.kill('SIGTERM')
    await child.says('hook waits start')
    child.kill('SIGTERM')
    // the hook's own limit is a minute: an exit before the test's timeout is the cut
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toContain('hook waits aborted: hook "waits" did not finish before a second signal forced the shutdown')
    expect(exit.stdout).toMatch(/shutdown \(signal SIGTERM\) FORCED by a second signal/)
  })

  it('D9.13 a second signal during the announce phase ends it at once (not after readinessDelay); with nothing left to cut and every hook ok, exit 0 (D9: 1 only when something was cut or failed)', async () => {
    await using child = new Child('second-signal-announce.mjs')
    await child.ready()
    child.kill('SIGTERM')
    await child.says('draining server (SIGTERM)')
    child.kill('SIGTERM')
    // readinessDelay is 10 s, the drain's timeout 20 s: an exit before the test's timeout is the cut
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toContain('forcing the shutdown now')
    expect(exit.stdout).toContain('hook cleanup done')
    expect(exit.stdout).toMatch(/shutdown \(signal SIGTERM\) drained \(forced by a second signal; nothing was left to cut\)/)
  })

  it('D13.7 resume() retrying EADDRINUSE keeps the process alive until it listens again (nothing else holds the event loop)', async () => {
    await using child = new Child('resume-retry.mjs')
    const exit = await child.exited
    expect(exit.stdout).toContain('resumed: listening true')
    expect(exit.code).toBe(0)
  })

  it("D11.9 Fastify with its logger off (its default): a fatal error and the drain's report still reach the console; exit 1", async () => {
    await using child = new Child('fastify-silent.mjs')
    const { port } = await child.ready()
    const ready = await RawClient.connect(port)
    ready.get('/ready')
    expect((await ready.response()).status).toBe(200)
    const c = await RawClient.connect(port)
    c.get('/crash-later')
    expect((await c.response()).body).toBe('scheduled')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    const output = exit.stdout + exit.stderr
    expect(output).toContain('uncaught exception')
    expect(output).toContain('boom from a timer')
    expect(output).toMatch(/quiesce: shutdown \(fatal\)/)
  })

  it("D11.10 the log's pipe closed during a drain: the EPIPE errors it raises are logged a few times, not in a loop that feeds itself; the drain still ends at its deadline, exit 1", async () => {
    await using child = new Child('closed-log-pipe.mjs')
    const { port } = await child.ready()
    const held = await RawClient.connect(port)
    held.get('/never')
    await child.says('started /never')
    const keepAlive = await RawClient.connect(port)
    keepAlive.get('/fast')
    await keepAlive.response()
    child.kill('SIGTERM')
    await child.says('draining server (SIGTERM)')
    child.process.stdout?.destroy()
    // a request on the open keep-alive socket: its handler's log line is the first EPIPE
    keepAlive.get('/slow?ms=10')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    const uncaught = Number(/uncaught errors: (\d+)/.exec(exit.stderr)?.[1])
    expect(uncaught).toBeGreaterThan(0)
    expect(uncaught).toBeLessThan(20)
  })
})
