import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { graceful } from '@quiesce/core'
import { RawClient } from '../../../test/helpers/raw.js'

async function start(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler)
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port }
}

describe('attaching to a server that already has open connections', () => {
  it('D17.1 an idle keep-alive socket accepted before graceful() is closed by the drain, not left for keepAliveTimeout', async () => {
    const { server, port } = await start((_req, res) => res.end('ok'))
    const before = await RawClient.connect(port)
    before.get('/')
    await before.response()
    const g = graceful(server, { signals: false, logger: false, idleGrace: 30 })
    const t0 = performance.now()
    const report = await g.shutdown()
    await before.ended()
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(report.timedOut).toBe(false)
  })

  it('D17.2 a request in flight on a socket accepted before graceful() completes, and the drain then ends', async () => {
    let release: () => void = () => {}
    const { server, port } = await start((_req, res) => {
      release = () => res.end('late')
    })
    const before = await RawClient.connect(port)
    before.get('/')
    await once(server, 'request')
    const g = graceful(server, { signals: false, logger: false, idleGrace: 30 })
    const report = g.shutdown()
    release()
    const r = await before.response()
    expect(r.body).toBe('late')
    await before.ended()
    expect((await report).timedOut).toBe(false)
  })

  it('D7.3 200 create-request-shutdown cycles finish without any keep-alive wait (keepAliveTimeout 60 s)', async () => {
    const agent = new http.Agent({ keepAlive: true })
    const t0 = performance.now()
    for (let i = 0; i < 200; i++) {
      const { server, port } = await start((_req, res) => res.end('ok'))
      const g = graceful(server, { signals: false, logger: false, idleGrace: 5 })
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, agent }, (res) => {
            res.resume()
            res.on('end', resolve)
          })
          .on('error', reject)
      })
      const report = await g.shutdown()
      expect(report.ok).toBe(true)
    }
    // one keep-alive wait would be 60 s; generous bound, the benchmark reports the real numbers
    expect(performance.now() - t0).toBeLessThan(30_000)
    agent.destroy()
  })
})
