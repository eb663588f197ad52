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
})
