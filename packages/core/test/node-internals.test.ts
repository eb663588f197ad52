import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { captureRejections, guardDrainingHeaders, isUpgraded, rawSocketOf, restoreRejections, serverOfSocket, setCloseMarker } from '../src/internal/node.js'
import { testCertificate } from '../../../test/helpers/tls.js'

/** Pins every Node private shape quiesce touches (packages/core/src/internal/node.ts), on each Node version CI runs. */
describe(`Node private shapes (${process.version})`, () => {
  it('EventEmitter keeps its captureRejections flag in an own kCapture symbol; with it on, a rejected listener reaches nodejs.rejection', async () => {
    const server = http.createServer(async () => {
      await null
      throw new Error('boom')
    })
    const previous = captureRejections(server)
    expect(previous).toBe(false)
    const captured = new Promise<unknown>((resolve) => {
      ;(server as unknown as Record<symbol, unknown>)[Symbol.for('nodejs.rejection')] = (
        err: unknown,
        _event: string,
        _req: unknown,
        res: http.ServerResponse,
      ) => {
        res.end()
        resolve(err)
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', agent: false }, (r) => r.resume())
    expect(((await captured) as Error).message).toBe('boom')
    restoreRejections(server, previous)
    server.close()
  })

  it("maxRequestsOnConnectionReached writes Connection: close without Node closing the socket; removeHeader's _removedConnection can be switched back", async () => {
    const server = http.createServer((_req, res) => {
      res.setHeader('Connection', 'keep-alive')
      setCloseMarker(res, true)
      guardDrainingHeaders(res, '1')
      res.end('x')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    let text = ''
    await new Promise<void>((resolve) =>
      socket.on('data', (d) => {
        text += d
        if (text.includes('\r\n\r\nx')) resolve()
      }),
    )
    expect(text).toMatch(/\r\nConnection: close\r\n/i)
    expect(text).not.toMatch(/keep-alive/i)
    // Node left the socket open: quiesce closes it itself (FIN + linger)
    expect(socket.destroyed).toBe(false)
    socket.destroy()
    server.close()
  })

  it('an upgraded socket has parser === null; a TLS server socket keeps its raw socket as _parent; sockets know their server', async () => {
    const { key, cert } = await testCertificate()
    const server = https.createServer({ key, cert }, (_req, res) => res.end('x'))
    const raws: net.Socket[] = []
    server.on('connection', (raw: net.Socket) => raws.push(raw))
    const secured = once(server, 'secureConnection')
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: cert, servername: 'localhost' })
    const [tlsSocket] = (await secured) as [tls.TLSSocket]
    expect(rawSocketOf(tlsSocket)).toBe(raws[0])
    expect(serverOfSocket(tlsSocket)).toBe(server)
    client.destroy()
    server.close()

    const plain = http.createServer()
    plain.on('upgrade', (_req, socket: net.Socket) => {
      expect(isUpgraded(socket)).toBe(true)
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n')
    })
    plain.listen(0, '127.0.0.1')
    await once(plain, 'listening')
    const s = net.connect((plain.address() as AddressInfo).port, '127.0.0.1')
    s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n')
    s.resume()
    await once(s, 'end')
    s.destroy()
    plain.close()
  })
})
