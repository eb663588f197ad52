import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { request } from './http.js'

/**
 * prom-client (current major) fed by quiesce (D18): gauges whose `collect()` reads `g.stats()`
 * and `g.state`, counters fed by the `quiesce:drain:end` and `quiesce:forced` diagnostics
 * channels, and a /metrics route (fixtures/prom-metrics.mjs), in a real child process stopped by
 * a real SIGTERM. `readinessDelay` keeps the listener open after the signal, so Prometheus can
 * still scrape while the drain runs.
 */
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'prom-metrics.mjs')

/** `name{labels} value` lines of a Prometheus exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

function finalMetrics(stdout: string): Map<string, number> {
  const m = /final metrics:\n([\s\S]*?)\nend of metrics/.exec(stdout)
  return m ? samples(m[1]!) : new Map()
}

describe('prom-client fed by stats() and the diagnostics channels', () => {
  it('D4 D18 a scrape during the drain shows the request in flight, the open connections and draining = 1; the drain end is counted', async () => {
    await using child = new Child(fixture)
    const { port } = await child.ready()
    const before = samples((await request(port, '/metrics')).body)
    // the scrape itself is the one request in flight
    expect(before.get('quiesce_requests_in_flight')).toBe(1)
    expect(before.get('quiesce_draining')).toBe(0)

    // an idle keep-alive client and a slow request, then SIGTERM
    const agent = new http.Agent({ keepAlive: true })
    expect((await request(port, '/fast', { agent })).body).toBe('fast')
    const slow = request(port, '/slow')
    await child.says('started /slow')
    child.kill('SIGTERM')
    await child.says('quiesce: draining server (SIGTERM)')

    // the announce phase (readinessDelay 1000 ms): the listener is open, Prometheus scrapes
    const during = await request(port, '/metrics')
    expect(during.status).toBe(200)
    expect(during.headers.connection).toBe('close')
    const s = samples(during.body)
    expect(s.get('quiesce_draining')).toBe(1)
    expect(s.get('quiesce_requests_in_flight')).toBe(2) // /slow and this scrape
    expect(s.get('quiesce_connections{state="open"}')).toBeGreaterThanOrEqual(3) // /slow, the scrape, the idle client
    expect(s.get('quiesce_connections{state="idle"}')).toBeGreaterThanOrEqual(1)
    expect((await request(port, '/ready')).status).toBe(503)

    expect((await slow).body).toBe('slow')
    const exit = await child.exited
    agent.destroy()
    expect(exit.code, exit.stdout + exit.stderr).toBe(0)
    const last = finalMetrics(exit.stdout)
    expect(last.get('quiesce_drains_total{ok="true"}'), exit.stdout).toBe(1)
    expect([...last.keys()].filter((k) => k.startsWith('quiesce_forced_total{'))).toEqual([])
  })

  it('D6 D18 a request forced at the deadline is counted by kind, and the drain end as not ok (exit 1)', async () => {
    await using child = new Child(fixture, { TIMEOUT_MS: '1500' })
    const { port } = await child.ready()
    const never = request(port, '/never').catch((err: NodeJS.ErrnoException) => err.code)
    await child.says('started /never')
    child.kill('SIGTERM')
    const exit = await child.exited
    expect(await never).toBe('ECONNRESET')
    expect(exit.code, exit.stdout + exit.stderr).toBe(1)
    const last = finalMetrics(exit.stdout)
    expect(last.get('quiesce_drains_total{ok="false"}'), exit.stdout).toBe(1)
    expect(last.get('quiesce_forced_total{kind="request"}'), exit.stdout).toBe(1)
  })
})
