import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { gracefulCluster } from '@quiesce/core/cluster'
import { aroundFailures, Child, cleanEnv, describeLoad, fixtures, get, killAll, Load, Reporter, type ReportEvent } from './harness.js'

/**
 * node:cluster: a primary running fixtures/worker-app.cjs on two workers, restarted under a
 * continuous keep-alive load that never retries. Measured by the load: every request's answer.
 */
let reporter: Reporter
const pids = new Set<number>()

beforeEach(async () => {
  reporter = await Reporter.start()
})

afterEach(async () => {
  // whatever happened, nothing this test started outlives it
  for (const e of reporter.events) pids.add(e.pid)
  killAll(pids)
  pids.clear()
  await reporter.close()
})

function startPrimary(mode: 'quiesce' | 'naive', extraEnv: Record<string, string> = {}): Child {
  const primary = Child.fork(
    `${fixtures}/cluster-primary.mjs`,
    cleanEnv({
      PRIMARY_MODE: mode,
      REPORT_PORT: String(reporter.port),
      QUIESCE_OPTIONS: JSON.stringify({ timeout: 5000, hooksTimeout: 1000 }),
      ...extraEnv,
    }),
  )
  pids.add(primary.pid)
  return primary
}

const isListening = (e: ReportEvent): boolean => e.event === 'listening'

/** Waits for `count` workers listening from `from` on; returns their pids and the shared port. */
async function workersUp(count: number, from: number): Promise<{ pids: number[]; port: number }> {
  const up = await reporter.waitForPids(count, isListening, `${count} workers listening`, { from })
  const first = reporter.events.find((e) => isListening(e) && e.pid === up[0]) as ReportEvent
  return { pids: up, port: first.port as number }
}

/** `restarts` full rolling restarts under load; returns the load's result, the restart reports and the last workers. */
async function restartUnderLoad(
  primary: Child,
  restarts: number,
): Promise<{ load: Awaited<ReturnType<Load['stop']>>; reports: ReportEvent[]; workerPids: number[] }> {
  const { pids: first, port } = await workersUp(2, 0)
  const load = new Load(port, 8)
  await load.progressed(300)
  const reports: ReportEvent[] = []
  let workerPids = first
  for (let i = 0; i < restarts; i++) {
    const from = reporter.mark()
    primary.proc.send('restart')
    reports.push(
      await reporter
        .waitFor((e) => e.event === 'restarted', 'the restart to finish', { from })
        .catch((err: Error) => {
          throw new Error(`${err.message}\nprimary output:\n${primary.output}`)
        }),
    )
    workerPids = (await workersUp(2, from)).pids
    // the new workers take load before the next step
    await load.progressed(300)
  }
  return { load: await load.stop(), reports, workerPids }
}

describe('node:cluster rolling restart (@quiesce/core/cluster)', () => {
  it('D9.11 a full rolling restart under keep-alive load fails no request; then SIGTERM drains every worker and the primary exits 0', async () => {
    const primary = startPrimary('quiesce')
    const { load, reports, workerPids } = await restartUnderLoad(primary, 3)
    console.log(`quiesce rolling restart ×3: ${describeLoad(load)}`)

    // on failure: where in the restarts' timeline each lost request fell
    expect(load.failures, `${describeLoad(load)}\n${aroundFailures(load, reporter)}`).toEqual([])
    expect(load.total).toBeGreaterThan(900)
    expect(load.posts).toBeGreaterThan(300)
    for (const r of reports) {
      const report = r.report as { ok: boolean; workers: Array<{ code: number; killed: boolean }> }
      // each old worker drained and exited 0 by itself, none was killed
      expect(report.ok, JSON.stringify(report)).toBe(true)
      expect(report.workers.map((w) => [w.code, w.killed])).toEqual([
        [0, false],
        [0, false],
      ])
    }
    // the last workers served (the load reached them)
    for (const pid of workerPids) expect(load.byPid.get(pid) ?? 0).toBeGreaterThan(0)
    // 2 initial workers + 3 restarts × 2 = 8 workers answered
    expect(load.byPid.size).toBe(8)

    // the primary handles SIGTERM: every worker drains (a request in flight finishes), then it exits 0
    const port = (reporter.events.find((e) => isListening(e) && e.pid === workerPids[0]) as ReportEvent).port as number
    const from = reporter.mark()
    const slow = get(port, '/slow?id=last&ms=600&report=1')
    await reporter.waitFor((e) => e.event === 'slow-start' && e.id === 'last', 'the slow request to reach a worker', { from })
    primary.proc.kill('SIGTERM')
    const answer = await slow
    expect(answer.status).toBe(200)
    expect(answer.headers.connection).toBe('close')
    expect(await primary.exit()).toEqual({ code: 0, signal: null })
    const exits = reporter.events.slice(from).filter((e) => e.event === 'worker-exit')
    expect(exits.map((e) => e.code).sort()).toEqual([0, 0])
  })

  it("D21.9 Ctrl+C to the process group: a worker's own copy of the signal after its primary's drain message is the same signal, not a second one — the request in flight finishes, every process exits 0", async () => {
    // a terminal's Ctrl+C (or systemd's SIGTERM to the control group) reaches the primary and every
    // worker; here in the order that broke: the primary's drain message first, then the worker's signal
    const primary = startPrimary('quiesce')
    const { port } = await workersUp(2, 0)
    const from = reporter.mark()
    const slow = get(port, '/slow?id=group&ms=800&report=1')
    const started = await reporter.waitFor((e) => e.event === 'slow-start' && e.id === 'group', 'the slow request to reach a worker', { from })
    primary.proc.kill('SIGINT')
    await reporter.waitFor((e) => e.event === 'drain-start' && e.pid === started.pid, "the worker to hear its primary's drain message", { from })
    process.kill(started.pid, 'SIGINT')
    const answer = await slow
    expect(answer.status).toBe(200)
    expect(answer.body).toBe(`ok group ${started.pid}`)
    expect(await primary.exit()).toEqual({ code: 0, signal: null })
    const ends = reporter.events.slice(from).filter((e) => e.event === 'drain-end' && e.pid === started.pid)
    expect(ends.map((e) => [e.ok, e.forced])).toEqual([[true, 0]])
    const exits = reporter.events.slice(from).filter((e) => e.event === 'worker-exit')
    expect(exits.map((e) => e.code).sort()).toEqual([0, 0])
  })

  it('without quiesce, the usual restart (fork, wait for listening, worker.kill()) under the same load fails requests', async () => {
    // the comparison that proves the load measures something: the same app and load, Node's defaults
    const primary = startPrimary('naive', { QUIESCE: 'off' })
    const { load } = await restartUnderLoad(primary, 2)
    console.log(`naive worker.kill() restart ×2, no quiesce in the workers: ${describeLoad(load)}`)
    expect(load.failures.length, describeLoad(load)).toBeGreaterThan(0)
  })

  it('D11.8 a worker that crashes (fatal error, exit 1) is replaced', async () => {
    const primary = startPrimary('quiesce')
    const { pids: first, port } = await workersUp(2, 0)
    const from = reporter.mark()
    const crash = await get(port, '/crash')
    expect(crash.status).toBe(200)
    const crashed = Number(crash.body.split(' ')[1])
    expect(first).toContain(crashed)
    const exit = await reporter.waitFor((e) => e.event === 'worker-exit' && e.workerPid === crashed, 'the crashed worker to exit', { from })
    expect(exit.code).toBe(1)
    const replacement = await reporter.waitFor((e) => isListening(e) && !first.includes(e.pid), 'a replacement worker', { from })
    expect(reporter.logs(primary.pid).join('\n')).toMatch(new RegExp(`pid ${crashed}\\) exited unexpectedly \\(code 1\\); forking a replacement`))
    // the pool is whole again: the replacement and the survivor answer
    const answered = new Set<number>()
    for (let i = 0; i < 6; i++) answered.add(Number((await get(port, `/fast?id=${i}`)).body.split(' ')[2]))
    expect([...answered].sort()).toEqual([replacement.pid, first.find((p) => p !== crashed)].sort())
    primary.proc.kill('SIGTERM')
    expect(await primary.exit()).toEqual({ code: 0, signal: null })
  })

  it("waitFor 'ready': workers count as up at notifyReady(); a new worker that never gets ready stops the restart, and the old ones keep serving", async () => {
    const primary = startPrimary('quiesce', { WAIT_FOR: 'ready', START_TIMEOUT: '1500', NOTIFY_READY: '1' })
    const { port } = await workersUp(2, 0)
    const load = new Load(port, 4)
    await load.progressed(200)

    // a good deploy: replaced once each worker said it is ready
    let from = reporter.mark()
    primary.proc.send('restart')
    const good = (await reporter.waitFor((e) => e.event === 'restarted', 'the first restart', { from })).report as { ok: boolean; workers: unknown[] }
    expect(good.ok).toBe(true)
    expect(good.workers).toHaveLength(2)
    const serving = (await workersUp(2, from)).pids

    // a broken deploy: the new worker listens but never calls notifyReady()
    primary.proc.send({ env: { NOTIFY_READY: '0' } })
    from = reporter.mark()
    primary.proc.send('restart')
    const bad = (await reporter.waitFor((e) => e.event === 'restarted', 'the second restart', { from })).report as {
      ok: boolean
      workers: unknown[]
      error: string
    }
    expect(bad.ok).toBe(false)
    expect(bad.workers).toEqual([])
    expect(bad.error).toMatch(/did not come up: not up within startTimeout \(1500 ms\)/)
    // the candidate is drained like any worker (it listened, so it may have taken connections)
    const candidate = (await reporter.waitFor((e) => isListening(e), 'the candidate', { from })).pid
    expect(serving).not.toContain(candidate)
    expect((await reporter.waitFor((e) => e.event === 'worker-exit' && e.workerPid === candidate, 'the candidate to exit', { from })).code).toBe(0)

    await load.progressed(200)
    const result = await load.stop()
    expect(result.failures, describeLoad(result)).toEqual([])
    // the workers of the good deploy are still the ones serving
    const after = new Set<number>()
    for (let i = 0; i < 6; i++) after.add(Number((await get(port, `/fast?id=${i}`)).body.split(' ')[2]))
    expect([...after].sort()).toEqual([...serving].sort())
    primary.proc.kill('SIGTERM')
    expect(await primary.exit()).toEqual({ code: 0, signal: null })
  })

  it("D21.7 a worker with graceful(server, { signals: false }) still drains on the primary's message: rolling restarts never SIGKILL it", async () => {
    const primary = startPrimary('quiesce', { QUIESCE_OPTIONS: JSON.stringify({ timeout: 5000, hooksTimeout: 1000, signals: false }) })
    const { pids: first, port } = await workersUp(2, 0)
    const load = new Load(port, 4)
    await load.progressed(200)
    const from = reporter.mark()
    primary.proc.send('restart')
    const done = (await reporter.waitFor((e) => e.event === 'restarted', 'the restart', { from })).report as {
      ok: boolean
      workers: Array<{ code: number; killed: boolean; drainMs: number }>
    }
    const result = await load.stop()
    expect(done.workers.map((w) => [w.code, w.killed])).toEqual([
      [0, false],
      [0, false],
    ])
    // drained at once on the message, not at killTimeout (10 s)
    for (const w of done.workers) expect(w.drainMs).toBeLessThan(5000)
    expect(done.ok).toBe(true)
    expect(result.failures, describeLoad(result)).toEqual([])
    expect((await workersUp(2, from)).pids.some((p) => first.includes(p))).toBe(false)
    primary.proc.kill('SIGTERM')
    expect((await primary.exit()).code).toBe(0)
  })

  it('D21.8 a worker that crashes right after listening is replaced with back-off, not in a loop', async () => {
    const primary = startPrimary('quiesce', { CRASH_ON_LISTEN: '1' })
    const from = reporter.mark()
    await reporter.waitForPids(2, isListening, 'the first two workers', { from })
    // a fixed window of observation (not synchronisation): how many forks listened in 2 s
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const forks = reporter.events.slice(from).filter(isListening).length
    // without back-off: ~18 in 2 s; with 100, 200, 400, 800 ms… per crash: a handful
    expect(forks).toBeLessThanOrEqual(10)
    expect(reporter.logs(primary.pid).join('\n')).toMatch(/forking a replacement in \d+ ms/)
    primary.proc.kill('SIGTERM')
    await primary.exit()
  })

  it('D14.7 gracefulCluster() rejects bad options with a TypeError naming the option', () => {
    expect(() => gracefulCluster({ workers: 0 })).toThrow(/`workers` must be a whole number ≥ 1/)
    expect(() => gracefulCluster({ killTimeout: -1 })).toThrow(TypeError)
    expect(() => gracefulCluster({ waitFor: 'online' as 'ready' })).toThrow(/`waitFor`/)
    expect(() => gracefulCluster({ signals: ['SIGKILL'] })).toThrow(/`signals`/)
    expect(() => gracefulCluster({ restartSignal: 'SIGTERM' })).toThrow(/`restartSignal` must be a signal not listed in `signals`/)
    expect(() => gracefulCluster({ worker: 2 } as never)).toThrow(/`worker`/)
  })
})
