import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { aroundFailures, Child, cleanEnv, describeLoad, fixtures, get, killAll, Load, repoRoot, Reporter, type ReportEvent } from './harness.js'

/**
 * PM2 (cluster mode) driving fixtures/worker-app.cjs, with its own PM2_HOME in a temp dir: one
 * daemon for this file, killed after it (`pm2 kill`, then its PID, then every worker PID seen).
 */
const pm2Bin = path.join(repoRoot, 'node_modules', 'pm2', 'bin', 'pm2')
let home: string
let reporter: Reporter

async function pm2(...args: string[]): Promise<string> {
  const cli = Child.spawn(process.execPath, [pm2Bin, ...args], { env: cleanEnv({ PM2_HOME: home }) })
  const { code } = await cli.exit(60_000)
  if (code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${code}:\n${cli.output}`)
  return cli.output
}

/** PM2 needs a fixed port per app (listen(0) in two apps of one daemon would share one handle): a free one, now. */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

interface App {
  name: string
  port: number
  instances: number
  killTimeout?: number
  options?: Record<string, unknown>
  extra?: Record<string, unknown>
  env?: Record<string, string>
}

/** Writes an ecosystem file for `app` and starts it; resolves once every instance listens. */
async function startApp(app: App): Promise<number[]> {
  const config = {
    apps: [
      {
        name: app.name,
        script: path.join(fixtures, 'worker-app.cjs'),
        exec_mode: 'cluster',
        instances: app.instances,
        ...(app.killTimeout !== undefined ? { kill_timeout: app.killTimeout } : {}),
        ...app.extra,
        env: {
          PORT: String(app.port),
          REPORT_PORT: String(reporter.port),
          QUIESCE_OPTIONS: JSON.stringify(app.options ?? {}),
          ...app.env,
        },
      },
    ],
  }
  const file = path.join(home, `${app.name}.config.cjs`)
  fs.writeFileSync(file, `module.exports = ${JSON.stringify(config, null, 2)}\n`)
  const from = reporter.mark()
  await pm2('start', file)
  return reporter.waitForPids(app.instances, (e) => e.event === 'listening' && e.port === app.port, `${app.name}: ${app.instances} instances listening`, {
    from,
  })
}

const eventOf =
  (pid: number, event: string) =>
  (e: ReportEvent): boolean =>
    e.pid === pid && e.event === event

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-pm2-'))
  reporter = await Reporter.start()
})

// when a test fails, what PM2 and the instances wrote (e.g. an instance that could not start) is in the output
afterEach(({ task }) => {
  if (task.result?.state !== 'fail') return
  const logs = path.join(home, 'logs')
  for (const file of fs.existsSync(logs) ? fs.readdirSync(logs).filter((f) => f.includes('-error')) : []) {
    console.error(`── ${file}\n${fs.readFileSync(path.join(logs, file), 'utf8').slice(-3000)}`)
  }
  console.error(`── pm2.log\n${fs.readFileSync(path.join(home, 'pm2.log'), 'utf8').slice(-3000)}`)
})

afterAll(async () => {
  try {
    await pm2('kill')
  } finally {
    const pidFile = path.join(home, 'pm2.pid')
    const pids = new Set(reporter.events.map((e) => e.pid))
    if (fs.existsSync(pidFile)) pids.add(Number(fs.readFileSync(pidFile, 'utf8')))
    killAll(pids)
    await reporter.close()
    fs.rmSync(home, { recursive: true, force: true })
  }
}, 60_000)

describe('PM2 cluster mode', () => {
  it('pm2 reload (SIGINT to each old instance) under keep-alive load fails no request; wait_ready with notifyReady()', async () => {
    const app: App = {
      name: 'api',
      port: await freePort(),
      instances: 2,
      killTimeout: 5000,
      options: { timeout: 3000, hooksTimeout: 1000 },
      // notifyReady() is what lets a reload go on: without it PM2 would wait listen_timeout (30 s) per instance
      extra: { wait_ready: true, listen_timeout: 30_000 },
      env: { NOTIFY_READY: '1' },
    }
    const first = await startApp(app)
    const load = new Load(app.port, 8)
    await load.progressed(300)
    const generations = [first]
    for (let i = 0; i < 3; i++) {
      const from = reporter.mark()
      const t0 = performance.now()
      await pm2('reload', app.name)
      const reloadMs = performance.now() - t0
      expect(reloadMs, 'the reload waited for notifyReady(), not listen_timeout').toBeLessThan(20_000)
      generations.push(await reporter.waitForPids(2, (e) => e.event === 'listening' && e.port === app.port, 'the new instances', { from }))
      await load.progressed(300)
    }
    const result = await load.stop()
    console.log(`pm2 reload ×3: ${describeLoad(result)}`)

    expect(result.failures, `${describeLoad(result)}\n${aroundFailures(result, reporter)}`).toEqual([])
    expect(result.total).toBeGreaterThan(1000)
    expect(result.byPid.size).toBe(8)
    // every old instance drained on PM2's SIGINT inside its budget (no D19 warning: 3000 + 1000 fits 5000) and exited cleanly
    for (const pid of generations.slice(0, -1).flat()) {
      expect((await reporter.waitFor(eventOf(pid, 'drain-start'), `drain of ${pid}`)).signal).toBe('SIGINT')
      expect((await reporter.waitFor(eventOf(pid, 'drain-end'), `end of the drain of ${pid}`)).ok).toBe(true)
    }
    expect(reporter.logs().filter((l) => /exceeds/.test(l))).toEqual([])
  })

  it('D19.2 under PM2: warns at start-up naming both numbers, and the drain ends inside kill_timeout', async () => {
    // PM2's default kill_timeout (1600 ms) against the defaults (timeout 10 000 + hooksTimeout 5000)
    const tight: App = { name: 'tight', port: await freePort(), instances: 1 }
    // an explicit kill_timeout is the budget too
    const set: App = { name: 'set', port: await freePort(), instances: 1, killTimeout: 2500, options: { timeout: 4000, hooksTimeout: 1000 } }
    const [tightPid] = (await startApp(tight)) as [number]
    const [setPid] = (await startApp(set)) as [number]
    expect(reporter.logs(tightPid)).toContain(
      "quiesce: timeout (10000 ms) + hooksTimeout (5000 ms) = 15000 ms exceeds PM2's default kill_timeout of 1600 ms; " +
        'draining with timeout 1000 ms and hooksTimeout 500 ms so the process exits before it is killed',
    )
    expect(reporter.logs(setPid).join('\n')).toMatch(/= 5000 ms exceeds PM2's kill_timeout of 2500 ms; draining with timeout 1920 ms and hooksTimeout 480 ms/)

    // a request that never answers holds the drain to its (fitted) deadline
    const from = reporter.mark()
    const hung = get(tight.port, '/hang?id=h').then(
      () => 'answered',
      (err: Error) => err.message,
    )
    await reporter.waitFor((e) => e.event === 'hang' && e.pid === tightPid, 'the hanging request to arrive', { from })
    await pm2('reload', tight.name)
    const start = await reporter.waitFor(eventOf(tightPid, 'drain-start'), 'the drain to start', { from })
    const end = await reporter.waitFor(eventOf(tightPid, 'drain-end'), 'the drain to end', { from })
    expect(start.signal).toBe('SIGINT')
    expect(start.timeout).toBe(1000)
    expect(end.timedOut).toBe(true)
    expect(end.forced).toBeGreaterThan(0)
    // quiesce ended it (its report arrived) well before PM2's SIGKILL at 1600 ms
    expect(end.at - start.at).toBeLessThan(1600)
    expect(await hung).toMatch(/socket hang up|ECONNRESET/)
  })

  it("D19.3 PM2's shutdown message (shutdown_with_message) drains like a signal", async () => {
    const app: App = {
      name: 'message',
      port: await freePort(),
      instances: 1,
      killTimeout: 5000,
      options: { timeout: 3000, hooksTimeout: 1000 },
      extra: { shutdown_with_message: true },
    }
    const [pid] = (await startApp(app)) as [number]
    const from = reporter.mark()
    const slow = get(app.port, '/slow?id=m&ms=400&report=1')
    await reporter.waitFor((e) => e.event === 'slow-start' && e.pid === pid, 'the slow request to arrive', { from })
    await pm2('stop', app.name)
    expect((await reporter.waitFor(eventOf(pid, 'drain-start'), 'the drain to start', { from })).signal).toBe('shutdown')
    expect((await reporter.waitFor(eventOf(pid, 'drain-end'), 'the drain to end', { from })).ok).toBe(true)
    const answer = await slow
    expect(answer.status).toBe(200)
    expect(answer.body).toBe(`ok m ${pid}`)
  })
})
