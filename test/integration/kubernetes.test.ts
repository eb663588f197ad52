import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RawClient } from '../helpers/raw.js'
import { Child, cleanEnv, fixtures, get, killAll, Reporter, type ReportEvent } from './harness.js'

/**
 * What a Kubernetes pod sees: fixtures/worker-app.cjs as a plain child process, a real SIGTERM,
 * readiness and liveness probes on fresh connections (as the kubelet makes them).
 */
let reporter: Reporter
let child: Child | null = null

beforeEach(async () => {
  reporter = await Reporter.start()
})

afterEach(async () => {
  if (child !== null) killAll([child.pid])
  child = null
  await reporter.close()
})

async function startApp(options: Record<string, unknown>): Promise<{ app: Child; port: number }> {
  const app = Child.spawn(process.execPath, [`${fixtures}/worker-app.cjs`], {
    env: cleanEnv({ REPORT_PORT: String(reporter.port), QUIESCE_OPTIONS: JSON.stringify(options) }),
  })
  child = app
  const listening = await reporter.waitFor((e) => e.event === 'listening' && e.pid === app.pid, 'the app to listen')
  return { app, port: listening.port as number }
}

const of =
  (pid: number, event: string) =>
  (e: ReportEvent): boolean =>
    e.pid === pid && e.event === event

describe('Kubernetes: readiness during the announce phase', () => {
  it('D4.10 at SIGTERM the readiness probe answers 503 at once while other routes still answer, for readinessDelay; then the listener closes and the drain ends with exit 0', async () => {
    const { app, port } = await startApp({ readinessDelay: 1000, timeout: 8000 })
    expect((await get(port, '/ready')).status).toBe(200)

    // a keep-alive client with a request in flight across the whole announce phase
    const client = await RawClient.connect(port)
    client.get('/slow?id=inflight&ms=2000&report=1')
    await reporter.waitFor((e) => e.event === 'slow-start' && e.id === 'inflight', 'the in-flight request to arrive')

    app.proc.kill('SIGTERM')
    const start = await reporter.waitFor(of(app.pid, 'drain-start'), 'the drain to start')
    expect(start.signal).toBe('SIGTERM')

    // announce phase: new connections are still accepted; readiness fails, the rest answers (with Connection: close)
    const ready = await get(port, '/ready')
    expect(ready.status).toBe(503)
    expect(ready.headers['retry-after']).toBe('1')
    expect(ready.headers['cache-control']).toBe('no-store')
    const live = await get(port, '/live')
    expect(live.status).toBe(200)
    const work = await get(port, '/fast?id=during')
    expect(work.status).toBe(200)
    expect(work.body).toBe(`ok during ${app.pid}`)
    expect(work.headers.connection).toBe('close')
    // all of that happened inside the announce phase
    expect(reporter.events.some(of(app.pid, 'listener-close'))).toBe(false)

    // then the listener closes (not before readinessDelay), and new connections are refused
    const closed = await reporter.waitFor(of(app.pid, 'listener-close'), 'the listener to close')
    expect(closed.at - start.at).toBeGreaterThanOrEqual(900)
    await expect(get(port, '/fast?id=late')).rejects.toMatchObject({ code: 'ECONNREFUSED' })

    // the in-flight request finishes, its socket closes after it, the process exits 0
    const answer = await client.response(1)
    expect(answer.status).toBe(200)
    expect(answer.body).toBe(`ok inflight ${app.pid}`)
    expect(answer.headers.connection).toBe('close')
    await client.ended()
    expect(await app.exit()).toEqual({ code: 0, signal: null })
    expect((await reporter.waitFor(of(app.pid, 'drain-end'), 'the report')).ok).toBe(true)
  })

  it('D19.1 an explicit budget (terminationGracePeriodSeconds) that timeout + hooksTimeout exceed: a start-up warning naming both numbers, and a drain that fits', async () => {
    const { app } = await startApp({ budget: 3000, timeout: 10_000, hooksTimeout: 5000 })
    expect(reporter.logs(app.pid)).toContain(
      'quiesce: timeout (10000 ms) + hooksTimeout (5000 ms) = 15000 ms exceeds the budget option of 3000 ms; ' +
        'draining with timeout 1933 ms and hooksTimeout 966 ms so the process exits before it is killed',
    )
    app.proc.kill('SIGTERM')
    expect((await reporter.waitFor(of(app.pid, 'drain-start'), 'the drain to start')).timeout).toBe(1933)
    expect(await app.exit()).toEqual({ code: 0, signal: null })
  })
})
