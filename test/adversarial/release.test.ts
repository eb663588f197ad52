import http from 'node:http'
import { once } from 'node:events'
import v8 from 'node:v8'
import vm from 'node:vm'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { graceful } from '@quiesce/core'
import { fcOptions, get } from './helpers.js'

/**
 * D20: "A controller whose servers closed any other way (`server.close()`, the test helper) is
 * released; nothing holds it for the process's life." Random numbers of servers, closed by
 * Node's own close (after some requests), never by shutdown(): afterwards the process has its
 * signal listeners back to what it had, and the controllers can be garbage-collected.
 */
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

async function cycle(n: number, requests: number, end: 'server.close()' | 'shutdown()' = 'server.close()'): Promise<WeakRef<object>[]> {
  const refs: WeakRef<object>[] = []
  const servers: http.Server[] = []
  const ends: Array<() => Promise<unknown>> = []
  for (let i = 0; i < n; i++) {
    const server = http.createServer((_req, res) => res.end('ok'))
    const g = graceful(server, { logger: false, timeout: 500 })
    refs.push(new WeakRef(g), new WeakRef(server))
    if (end === 'shutdown()')
      server.once('listening', () => {
        ends.push(() => g.shutdown())
      })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    servers.push(server)
  }
  for (const server of servers) {
    const port = (server.address() as { port: number }).port
    for (let k = 0; k < requests; k++) expect((await get(port, '/', false).promise).status).toBe(200)
  }
  if (end === 'shutdown()') await Promise.all(ends.map((f) => f()))
  else {
    for (const server of servers) {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
  return refs
}

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
}

describe('D20: controllers released when their servers close by themselves', () => {
  it('D20.3 (control for D20.2) N servers drained with shutdown(): every controller collectable — the measurement itself works', async () => {
    const refs = await cycle(3, 2, 'shutdown()')
    await collect()
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0)
  })

  it('D20.2 N servers with graceful(), closed with server.close(): process signal listeners back to the baseline and every controller collectable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 }), async (n, requests) => {
        const baseline = { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') }
        const refs = await cycle(n, requests)
        await collect()
        const alive = refs.filter((r) => r.deref() !== undefined).length
        expect(
          { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') },
          'process signal listeners after every server closed',
        ).toEqual(baseline)
        expect(alive, `${alive} of ${refs.length} controllers/servers still reachable after ${n} servers closed with server.close()`).toBe(0)
      }),
      fcOptions(8, 20_000),
    )
  })
})
