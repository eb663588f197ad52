import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { RawClient } from '../helpers/raw.js'
import { drain, marks, once } from './drain.js'

describe('NestJS 11', () => {
  for (const platform of ['express', 'fastify'] as const) {
    it(`platform-${platform}, the README recipe (no enableShutdownHooks; g.onShutdown(() => app.close())): Nest's hooks run once, in order, after the in-flight response`, async () => {
      const { marks, exit } = await drain(`nest-${platform}.mjs`)
      const draining = once(marks, 'quiesce:draining')
      const finished = once(marks, 'slow:finished')
      const destroy = once(marks, 'nest:onModuleDestroy')
      const before = once(marks, 'nest:beforeApplicationShutdown:undefined')
      const shutdown = once(marks, 'nest:onApplicationShutdown:undefined')
      expect(draining).toBeLessThan(finished)
      expect(finished).toBeLessThan(destroy)
      expect(destroy).toBeLessThan(before)
      expect(before).toBeLessThan(shutdown)
      expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed.*hooks: nest ok/)
      expect(exit.stderr).toBe('')
    })

    it(`platform-${platform} with app.enableShutdownHooks(): Nest's re-sent SIGTERM does not force the drain; the in-flight request finishes, Nest's hooks run once, exit 0`, async () => {
      const { marks, exit } = await drain(`nest-${platform}-shutdown-hooks.mjs`)
      const draining = once(marks, 'quiesce:draining')
      const finished = once(marks, 'slow:finished')
      once(marks, 'nest:onModuleDestroy')
      once(marks, 'nest:beforeApplicationShutdown:SIGTERM')
      once(marks, 'nest:onApplicationShutdown:SIGTERM')
      expect(draining).toBeLessThan(finished)
      // Nest runs its hooks at the signal, while the request is still in flight: that is why the
      // README's recipe is g.onShutdown(() => app.close()) instead
      expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed/)
      expect(exit.stdout).not.toMatch(/FORCED|forced: GET/)
    })

    it(`platform-${platform} with app.enableShutdownHooks(): Nest re-sends SIGTERM while quiesce's cleanup hook still runs; that is not a "force now" signal: the hook completes, exit 0 (D20)`, async () => {
      const { marks, exit } = await drain(`nest-${platform}-shutdown-hooks.mjs`, { env: { DB_CLOSE_MS: '300' } })
      const finished = once(marks, 'slow:finished')
      const nestDone = once(marks, 'nest:onApplicationShutdown:SIGTERM')
      const dbStart = once(marks, 'db:close:start')
      const dbEnd = once(marks, 'db:close:end')
      expect(finished).toBeLessThan(nestDone)
      expect(finished).toBeLessThan(dbStart)
      // Nest's app.close() resolved (and it re-sent SIGTERM) while the db hook was running
      expect(nestDone).toBeLessThan(dbEnd)
      expect(exit.stdout).not.toContain('again — forcing')
      expect(exit.stdout).toContain('quiesce: SIGTERM again, re-sent by the handler that took the first one; the drain goes on')
      expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed.*hooks: db ok/)
    })

    if (platform === 'express')
      it("with app.enableShutdownHooks() and a SIGTERM handler of the app's own that stays installed: Nest's re-sent SIGTERM counts as a second signal — it forces, here the cleanup hook still running (D9), exit 1", async () => {
        const { exit } = await drain('nest-express-shutdown-hooks.mjs', { env: { DB_CLOSE_MS: '300', OWN_SIGTERM_HANDLER: '1' }, exitCode: 1 })
        expect(exit.stdout).toContain('quiesce: SIGTERM again — forcing the shutdown now')
        expect(exit.stdout).not.toContain('re-sent by the handler')
        expect(exit.stdout).toContain('did not finish before a second signal forced the shutdown')
      })

    it(`platform-${platform} with enableShutdownHooks([], { useProcessExit: true }): Nest's process.exit(0) cuts quiesce's cleanup hooks and the report (why the README says: don't)`, async () => {
      const { marks, exit } = await drain(`nest-${platform}-shutdown-hooks.mjs`, { env: { DB_CLOSE_MS: '300', NEST_USE_PROCESS_EXIT: '1' } })
      once(marks, 'db:close:start')
      expect(marks.get('db:close:end')).toBeUndefined()
      expect(exit.stdout).not.toContain('quiesce: shutdown (')
    })
  }

  it("platform-fastify with @quiesce/fastify on Nest's Fastify instance and g.onShutdown(() => app.close()): app.close() calls fastify.close() from inside the drain's own and waits for itself — the hook times out, exit 1 (why the recipe uses @quiesce/core)", async () => {
    await using child = new Child(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'nest-fastify-plugin.mjs'))
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow')
    await child.says('mark slow:started')
    child.kill('SIGTERM')
    const r = await c.response()
    expect(r.status).toBe(200)
    expect(r.headers.connection).toBe('close')
    const exit = await child.exited
    expect(exit.code).toBe(1)
    expect(exit.stdout).toContain('hook "nest" did not finish within 1000 ms')
    const m = marks(exit.stdout)
    once(m, 'nest:onModuleDestroy')
    expect(m.get('nest:onApplicationShutdown:undefined')).toBeUndefined()
  })
})
