import http from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import { describe, expect, it } from 'vitest'
import { listen } from '@quiesce/core/testing'

function get(url: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d
        })
        res.on('end', () => resolve(body))
      })
      .on('error', reject)
  })
}

const kinds = {
  'node server': () => http.createServer((_req, res) => res.end('ok')),
  'request handler': () => (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('ok'),
  express: () =>
    express().get('/', (_req, res) => {
      res.send('ok')
    }),
  koa: () =>
    new Koa().use((ctx) => {
      ctx.body = 'ok'
    }),
  fastify: () => Fastify().get('/', async () => 'ok'),
}

describe('@quiesce/core/testing', () => {
  it('starts and stops 500 servers (every kind) with keep-alive requests, without any keep-alive wait', async () => {
    const agent = new http.Agent({ keepAlive: true })
    const names = Object.keys(kinds) as Array<keyof typeof kinds>
    const t0 = performance.now()
    for (let i = 0; i < 500; i++) {
      const app = await listen(kinds[names[i % names.length] as keyof typeof kinds]())
      expect(await get(`${app.url}/`, agent)).toBe('ok')
      // the agent keeps its socket open (keep-alive): close() must not wait for it
      await app.close()
      expect(app.server.listening).toBe(false)
    }
    // 500 × keepAliveTimeout (5 s) if close() waited; generous bound, the benchmark reports the real time
    expect(performance.now() - t0).toBeLessThan(60_000)
    agent.destroy()
  })

  it('close() resolves when the server closed, is idempotent, and works with await using', async () => {
    const agent = new http.Agent({ keepAlive: true })
    let closed = false
    {
      await using app = await listen(kinds.express())
      app.server.once('close', () => {
        closed = true
      })
      expect(await get(`${app.url}/`, agent)).toBe('ok')
      const a = app.close()
      expect(app.close()).toBe(a)
      await a
      expect(closed).toBe(true)
    }
    agent.destroy()
  })

  it('close() on a server that stopped listening already resolves at once', async () => {
    const server = http.createServer((_req, res) => res.end('ok'))
    const app = await listen(server)
    await new Promise((r) => server.close(r))
    await app.close()
  })

  it('rejects what it cannot start, naming the argument', async () => {
    await expect(listen(42 as never)).rejects.toThrow(/`app` must be a node server, a request handler/)
  })
})
