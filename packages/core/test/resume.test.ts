import http from 'node:http'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { graceful, ResumeError, type GracefulServer } from '@quiesce/core'
import { get } from '../../../test/helpers/http.js'

/** Another process that takes the port while we are paused; it lets go after `holdMs` (or never). */
async function squatter(port: number, holdMs: number | null): Promise<{ exited: Promise<unknown>; kill: () => void }> {
  const code = `
    const s = require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('ready'))
    ${holdMs === null ? '' : `setTimeout(() => s.close(() => process.exit(0)), ${holdMs})`}
  `
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  await once(child.stdout, 'data')
  return { exited, kill: () => child.kill('SIGKILL') }
}

/** A server behind graceful(), listening on 127.0.0.1: the one that pauses and resumes. */
async function listening(): Promise<{ server: http.Server; g: GracefulServer; port: number }> {
  const server = http.createServer((_req, res) => res.end('ok'))
  const g = graceful(server, { signals: false, logger: false })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, g, port: (server.address() as AddressInfo).port }
}

describe('D13 resume()', () => {
  it('listens again on the same address, retrying EADDRINUSE with back-off while another process holds the port', async () => {
    const { server, g, port } = await listening()
    await g.pause({ mode: 'refuse' })
    const other = await squatter(port, 300)
    const t0 = performance.now()
    await g.resume()
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250)
    await other.exited
    expect((server.address() as AddressInfo).port).toBe(port)
    expect((await get(port)).status).toBe(200)
    await g.shutdown()
  })

  it('fails with a clear error naming the address when the port never frees, and stays paused', async () => {
    const { g, port } = await listening()
    await g.pause({ mode: 'refuse' })
    const other = await squatter(port, null)
    try {
      const err = await g.resume({ retries: 2 }).then(
        () => null,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(ResumeError)
      expect((err as ResumeError).code).toBe('ERR_QUIESCE_RESUME_FAILED')
      expect((err as Error).message).toContain(`127.0.0.1:${port}`)
      expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE')
      expect(g.state).toBe('paused')
    } finally {
      other.kill()
      await other.exited
    }
    await g.resume()
    expect(g.state).toBe('running')
    expect((await get(port)).status).toBe(200)
    await g.shutdown()
  })
})
