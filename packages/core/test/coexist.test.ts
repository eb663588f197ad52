import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Server as SocketIOServer } from 'socket.io'
import { io as ioClient } from 'socket.io-client'
import { describe, expect, it } from 'vitest'
import { graceful, type GracefulServer } from '@quiesce/core'
import { listen } from '@quiesce/core/testing'
import { request } from '../../../test/helpers/http.js'

/** D20: quiesce shares the server with other code that manages 'request' listeners. */

const quiet = { signals: false, logger: false, timeout: 2000 } as const

async function start(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Status and body only: the assertions compare the whole answer. */
async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const { status, body } = await request(port, path)
  return { status, body }
}

async function drained(g: GracefulServer): Promise<void> {
  if (g.state !== 'closed') expect((await g.shutdown()).ok).toBe(true)
}

describe("D20 other code managing the server's 'request' listeners", () => {
  it('D20.1 a second graceful() on the same server throws a TypeError at the call, and the server still answers through the first', async () => {
    const server = http.createServer((_req, res) => res.end('app'))
    const g = graceful(server, quiet)
    expect(() => graceful(server, quiet)).toThrow(TypeError)
    expect(() => graceful(server, quiet)).toThrow(/`server` must be a server no other quiesce controller drains/)
    const port = await start(server)
    expect(await get(port, '/')).toEqual({ status: 200, body: 'app' })
    expect(server.listenerCount('request')).toBe(1)
    await drained(g)
    // once the first one is done, the server is free again
    const again = graceful(server, quiet)
    expect(again.state).toBe('running')
    await again.shutdown()
  })

  it('D20.2 a hot-reload swap (removeListener v1, on v2) is honoured: only v2 answers, once', async () => {
    const ran: string[] = []
    const v1: http.RequestListener = (_req, res) => {
      ran.push('v1')
      res.end('v1')
    }
    const v2: http.RequestListener = (_req, res) => {
      ran.push('v2')
      res.end('v2')
    }
    const server = http.createServer(v1)
    const g = graceful(server, quiet)
    const port = await start(server)
    expect((await get(port, '/')).body).toBe('v1')
    server.removeListener('request', v1)
    server.on('request', v2)
    expect((await get(port, '/')).body).toBe('v2')
    expect(ran).toEqual(['v1', 'v2'])
    await drained(g)
  })

  it("D20.3 server.once('request') runs for one request only; prependListener runs first; removeAllListeners + on replaces them", async () => {
    const ran: string[] = []
    const server = http.createServer((req, res) => {
      ran.push(`main ${req.url}`)
      res.end('main')
    })
    const g = graceful(server, quiet)
    server.once('request', (req) => {
      ran.push(`once ${req.url}`)
    })
    server.prependListener('request', (req) => {
      ran.push(`first ${req.url}`)
    })
    const port = await start(server)
    await get(port, '/a')
    await get(port, '/b')
    expect(ran).toEqual(['first /a', 'main /a', 'once /a', 'first /b', 'main /b'])
    server.removeAllListeners('request')
    server.on('request', (_req, res) => res.end('replaced'))
    expect((await get(port, '/c')).body).toBe('replaced')
    await drained(g)
  })

  it('D20.4 graceful() after the listeners were added, and listeners added after graceful(): all run, each once', async () => {
    let count = 0
    const server = http.createServer()
    server.on('request', () => {
      count++
    })
    const g = graceful(server, quiet)
    server.on('request', (_req, res) => {
      count++
      res.end('ok')
    })
    const port = await start(server)
    await get(port, '/')
    await get(port, '/')
    expect(count).toBe(4)
    await drained(g)
  })

  it('D20.5 socket.io attached after graceful(): HTTP, long-polling and WebSocket clients all work, and the drain tells them to leave', async () => {
    const server = http.createServer((_req, res) => res.end('http'))
    const g = graceful(server, quiet)
    const io = new SocketIOServer(server)
    io.on('connection', (socket) => socket.on('ping!', (ack: (v: string) => void) => ack('pong')))
    g.beforeShutdown(
      () => {
        io.disconnectSockets(true)
      },
      { name: 'socket.io' },
    )
    const port = await start(server)
    expect(await get(port, '/')).toEqual({ status: 200, body: 'http' })
    const clients: Array<ReturnType<typeof ioClient>> = []
    try {
      for (const transport of ['polling', 'websocket'] as const) {
        const c = ioClient(`http://127.0.0.1:${port}`, { transports: [transport], reconnection: false })
        clients.push(c)
        await new Promise<void>((resolve) => c.once('connect', () => resolve()))
        expect(await c.emitWithAck('ping!')).toBe('pong')
      }
      const left = clients.map((c) => new Promise<[string]>((resolve) => c.once('disconnect', (reason) => resolve([reason]))))
      const t0 = performance.now()
      const report = await g.shutdown()
      expect((await Promise.all(left)).map(([reason]) => reason)).toEqual(['io server disconnect', 'io server disconnect'])
      // told to leave: nothing waited for the deadline
      expect(performance.now() - t0).toBeLessThan(1500)
      expect(report.timedOut).toBe(false)
    } finally {
      for (const c of clients) c.close()
      io.close()
    }
  })

  it("D20.6 a controller whose server closed by server.close() or the test helper is released: the process's signal handlers are gone", async () => {
    const baseline = process.listenerCount('SIGTERM')
    for (let i = 0; i < 100; i++) {
      const server = http.createServer((_req, res) => res.end('x'))
      graceful(server, { logger: false })
      await start(server)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    for (let i = 0; i < 100; i++) {
      const server = http.createServer((_req, res) => res.end('x'))
      graceful(server, { logger: false })
      const app = await listen(server)
      await app.close()
    }
    expect(process.listenerCount('SIGTERM')).toBe(baseline)
    // …and taken back when a server listens again
    const server = http.createServer((_req, res) => res.end('x'))
    const g = graceful(server, { logger: false })
    await start(server)
    expect(process.listenerCount('SIGTERM')).toBe(baseline + 1)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    expect(process.listenerCount('SIGTERM')).toBe(baseline)
    await start(server)
    expect(process.listenerCount('SIGTERM')).toBe(baseline + 1)
    await g.shutdown()
    expect(process.listenerCount('SIGTERM')).toBe(baseline)
  })

  it('D11.2 an async listener that rejects, added by other code after graceful(), answers its request 500; the server keeps serving', async () => {
    const server = http.createServer()
    const g = graceful(server, quiet)
    server.on('request', async (req, res) => {
      await null
      if (req.url === '/boom') throw new Error('boom')
      res.end('fine')
    })
    const port = await start(server)
    expect((await get(port, '/boom')).status).toBe(500)
    expect(await get(port, '/')).toEqual({ status: 200, body: 'fine' })
    await drained(g)
  })
})
