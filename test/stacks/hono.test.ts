import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { RawClient } from '../helpers/raw.js'
import { drain, once } from './drain.js'

describe('Hono on @hono/node-server', () => {
  it('serve() + graceful(server): the in-flight request (requestSignal(c.env.incoming)) completes with Connection: close, the idle socket gets a FIN, exit 0', async () => {
    const { marks, exit } = await drain('hono.mjs')
    expect(once(marks, 'quiesce:draining')).toBeLessThan(once(marks, 'slow:finished'))
    expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed, 0 aborted, 0 rejected — 1 idle socket closed, 0 forced/)
  })

  it('the readiness route answers 200, then 503 with Retry-After during the announce phase (readinessDelay), while the in-flight request still completes', async () => {
    let ready: Promise<{ before: number; during: { status: number; retryAfter?: string; connection?: string } }> | undefined
    await drain('hono.mjs', {
      env: { READINESS_DELAY: '400' },
      before: async (port, child) => {
        const probe = await RawClient.connect(port)
        probe.get('/ready')
        const before = (await probe.response()).status
        probe.destroy()
        // a load balancer's health check on a new connection once the drain has started
        ready = child.says('mark quiesce:draining').then(async () => {
          const c = await RawClient.connect(port)
          c.get('/ready')
          const r = await c.response()
          c.destroy()
          return { before, during: { status: r.status, retryAfter: r.headers['retry-after'], connection: r.headers.connection } }
        })
      },
    })
    expect(await ready).toEqual({ before: 200, during: { status: 503, retryAfter: '1', connection: 'close' } })
  })

  it('requestSignal(c.env.incoming) aborts with "client closed" when the client leaves mid-request', async () => {
    await using child = new Child(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'hono.mjs'))
    const { port } = await child.ready()
    const c = await RawClient.connect(port)
    c.get('/slow')
    await child.says('mark slow:started')
    c.destroy()
    await child.says('mark slow:aborted:ERR_QUIESCE_CLIENT_CLOSED')
    child.kill('SIGTERM')
    expect((await child.exited).code).toBe(0)
  })
})
