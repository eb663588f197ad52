import { once } from 'node:events'
import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { graceful } from '@quiesce/core'

async function listening(): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end('ok'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

describe('D8: before-shutdown hooks the deadline overtakes', () => {
  it('D8.2 shutdown({ timeout: 0 }) with a beforeShutdown hook: the hook ran once and is in the report, and ok agrees with it', async () => {
    const server = await listening()
    const g = graceful(server, { signals: false, logger: false })
    let runs = 0
    g.beforeShutdown(
      async () => {
        runs++
        // a hook's own work: one timer turn (what D13.1 found with a 0 ms hook)
        await new Promise((resolve) => setTimeout(resolve, 0))
      },
      { name: 'quick' },
    )
    const report = await g.shutdown({ timeout: 0 })
    expect(runs).toBe(1)
    expect(report.hooks.map((h) => h.name)).toEqual(['quick'])
    expect(report.ok).toBe(report.forced.length === 0 && report.hooks.every((h) => h.ok))
    expect(server.listening).toBe(false)
  })

  it('D8.3 a beforeShutdown hook still running at the deadline: its signal aborts, the report names it timed out and forced, ok: false', async () => {
    const server = await listening()
    const g = graceful(server, { signals: false, logger: false, timeout: 100 })
    let aborted = false
    g.beforeShutdown(
      (signal) =>
        new Promise<void>((resolve) => {
          signal.addEventListener(
            'abort',
            () => {
              aborted = true
              resolve()
            },
            { once: true },
          )
        }),
      { name: 'hangs' },
    )
    const report = await g.shutdown()
    expect(aborted, 'the hook was told its time is up').toBe(true)
    expect(report.timedOut).toBe(true)
    expect(report.hooks).toEqual([expect.objectContaining({ name: 'hangs', ok: false, timedOut: true })])
    expect(report.forced).toContainEqual({ kind: 'hook', name: 'hangs', timedOut: true })
    expect(report.ok).toBe(false)
    expect(server.listening).toBe(false)
  })
})
