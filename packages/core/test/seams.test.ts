import diagnostics from 'node:diagnostics_channel'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal, type ShutdownReport } from '@quiesce/core'
import { testCertificate } from '../../../test/helpers/tls.js'

const quiet = { signals: false, logger: false } as const

function socketPath(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-'))
  return path.join(dir, `${name}.sock`)
}

describe('odd but legal seams (D21, D18, D10, D1)', () => {
  it('D21.5 HTTPS on a Unix socket: every pending TLS handshake is tracked (not one per "unknown" address); the drain closes them after headerGrace and the server closes', async () => {
    const { key, cert } = await testCertificate()
    const server = https.createServer({ key, cert }, (_req, res) => res.end('x'))
    const g = graceful(server, { ...quiet, headerGrace: 100, timeout: 3000 })
    const file = socketPath('tls')
    server.listen(file)
    await once(server, 'listening')
    const accepted = new Promise<void>((resolve) => {
      let n = 0
      server.on('connection', () => {
        if (++n === 3) resolve()
      })
    })
    // three clients that connect and never say hello
    const clients = [1, 2, 3].map(() => net.connect(file))
    for (const c of clients) c.on('error', () => {})
    await accepted
    expect(g.stats().connections).toBe(3)
    const report = await g.shutdown()
    expect(report).toMatchObject({ ok: true, timedOut: false })
    expect(report.drainMs).toBeLessThan(2000)
    await Promise.all(clients.map((c) => (c.closed ? Promise.resolve() : once(c, 'close'))))
  })

  it('D21.6 HTTP on a Unix socket drains as TCP does: the in-flight request finishes with Connection: close, the idle socket is closed', async () => {
    const server = http.createServer((req, res) => setTimeout(() => res.end(req.url), req.url === '/slow' ? 200 : 0))
    const g = graceful(server, { ...quiet, timeout: 3000 })
    const file = socketPath('http')
    server.listen(file)
    await once(server, 'listening')
    const idleAgent = new http.Agent({ keepAlive: true })
    const busyAgent = new http.Agent({ keepAlive: true })
    const get = (p: string, agent: http.Agent): Promise<http.IncomingMessage & { body: string }> =>
      new Promise((resolve, reject) => {
        http
          .get({ socketPath: file, path: p, agent }, (res) => {
            let body = ''
            res
              .setEncoding('utf8')
              .on('data', (d: string) => {
                body += d
              })
              .on('end', () => resolve(Object.assign(res, { body })))
          })
          .on('error', reject)
      })
    await get('/idle', idleAgent)
    const slow = get('/slow', busyAgent)
    await new Promise((r) => setTimeout(r, 20))
    const report = await g.shutdown()
    const res = await slow
    expect(res.body).toBe('/slow')
    expect(res.headers.connection).toBe('close')
    expect(report).toMatchObject({ ok: true, requestsCompleted: 1 })
    expect(report.socketsClosedIdle).toBeGreaterThanOrEqual(1)
    idleAgent.destroy()
    busyAgent.destroy()
  })

  it('D1.6 a stall earlier in the check phase (200 ms of user work in a setImmediate) does not let the sweep cut a socket whose next request arrived meanwhile', async () => {
    const server = http.createServer((req, res) => res.end(req.url))
    const g = graceful(server, { ...quiet, idleGrace: 50, timeout: 3000 })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
    await once(client, 'connect')
    let received = ''
    client.setEncoding('utf8').on('data', (d: string) => {
      received += d
    })
    client.on('error', () => {})
    client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise<void>((resolve) =>
      client.on('data', () => {
        if (received.includes('/first')) resolve()
      }),
    )
    let listenerClosedAt = 0
    const ch = diagnostics.channel('quiesce:listener:close')
    const onClose = (): void => {
      listenerClosedAt = performance.now()
    }
    ch.subscribe(onClose)
    // An immediate that re-queues itself runs ahead of anything queued in the timers phase of the
    // next iteration. When the sweep due at the end of the idle grace is queued (seen by its name
    // as it goes through setImmediate), the chain's next run stalls 200 ms in that very check
    // phase, ahead of the sweep, and the client's next request arrives during the stall.
    let armed = false
    let stalled = false
    const realSetImmediate = globalThis.setImmediate
    globalThis.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
      if (fn.name === '#sweep' && listenerClosedAt !== 0 && performance.now() >= listenerClosedAt + 45) armed = true
      return realSetImmediate(fn, ...args)
    }) as typeof setImmediate
    const chain = (): void => {
      if (stalled) return
      if (armed) {
        stalled = true
        client.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n')
        const until = performance.now() + 200
        while (performance.now() < until) {
          /* user work */
        }
        return
      }
      realSetImmediate(chain)
    }
    realSetImmediate(chain)
    let report: ShutdownReport | undefined
    try {
      report = await g.shutdown()
    } finally {
      globalThis.setImmediate = realSetImmediate
      ch.unsubscribe(onClose)
    }
    expect(stalled).toBe(true)
    await new Promise<void>((resolve) => (client.closed ? resolve() : client.once('close', () => resolve())))
    expect(received).toContain('/second')
    expect(received).toMatch(/\/second$/)
    expect(report?.ok).toBe(true)
  })

  it('D18.2 a failing closeUpgraded hook is published on quiesce:forced and named in the report', async () => {
    const server = http.createServer()
    server.on('upgrade', (_req, socket: net.Socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'))
    const g = graceful(server, {
      ...quiet,
      timeout: 300,
      closeUpgraded: () => {
        throw new Error('no')
      },
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const s = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n')
    await once(s, 'data')
    const published: unknown[] = []
    const ch = diagnostics.channel('quiesce:forced')
    const on = (m: unknown): void => {
      if ((m as { controller: unknown }).controller === g) published.push((m as { item: unknown }).item)
    }
    ch.subscribe(on)
    const report = await g.shutdown()
    ch.unsubscribe(on)
    expect(report.forced).toContainEqual({ kind: 'hook', name: 'closeUpgraded', timedOut: false })
    expect(published).toContainEqual({ kind: 'hook', name: 'closeUpgraded', timedOut: false })
  })

  it('D18.3 the report is final: a closeUpgraded promise rejecting after the drain ended is published, and leaves the report as it was', async () => {
    const server = http.createServer()
    server.on('upgrade', (_req, socket: net.Socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'))
    let failLate: (err: Error) => void = () => {}
    const g = graceful(server, {
      ...quiet,
      timeout: 3000,
      closeUpgraded: (socket) => {
        socket.end()
        return new Promise<void>((_resolve, reject) => {
          failLate = reject
        })
      },
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const s = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n')
    await once(s, 'data')
    const published: unknown[] = []
    const ch = diagnostics.channel('quiesce:forced')
    const on = (m: unknown): void => {
      if ((m as { controller: unknown }).controller === g) published.push((m as { item: unknown }).item)
    }
    ch.subscribe(on)
    try {
      const report = await g.shutdown()
      expect(report.ok).toBe(true)
      expect(report.forced).toEqual([])
      failLate(new Error('late'))
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(published).toContainEqual({ kind: 'hook', name: 'closeUpgraded', timedOut: false })
      expect(report.forced).toEqual([])
      expect(await g.shutdown()).toBe(report)
    } finally {
      ch.unsubscribe(on)
    }
  })

  it("D10.4 a handler's own res.destroy() is not reported as the client closing", async () => {
    let aborted: (reason: unknown) => void = () => {}
    const reason = new Promise<unknown>((resolve) => {
      aborted = resolve
    })
    const server = http.createServer((req, res) => {
      const signal = requestSignal(req)
      signal.addEventListener('abort', () => aborted(signal.reason), { once: true })
      setTimeout(() => res.destroy(), 20)
    })
    const g = graceful(server, { ...quiet, timeout: 3000 })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const failed = new Promise<void>((resolve) => {
      http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', agent: false }).on('error', () => resolve())
    })
    await failed
    expect(((await reason) as { code?: string }).code).toBe('ERR_QUIESCE_RESPONSE_DESTROYED')
    const report = await g.shutdown()
    expect(report.requestsAborted).toBe(0)
  })
})
