import { type ChildProcess, fork, spawn, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures')
export const repoRoot = path.resolve(fixtures, '..', '..', '..')

/** One line a fixture process reported (see fixtures/report.cjs), stamped on arrival. */
export interface ReportEvent {
  event: string
  pid: number
  /** performance.now() in the test process when the line arrived. */
  at: number
  [key: string]: unknown
}

/**
 * The test side of fixtures/report.cjs: a TCP server on 127.0.0.1 collecting JSON lines from
 * every fixture process (plain children, cluster workers, PM2 instances), with event-driven waits.
 */
export class Reporter {
  readonly events: ReportEvent[] = []
  readonly #server: net.Server
  readonly #sockets = new Set<net.Socket>()
  #waiters: Array<() => void> = []

  private constructor(server: net.Server) {
    this.#server = server
    server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
      socket.on('error', () => {})
      let buffer = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => {
        buffer += chunk
        let nl: number
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          this.events.push({ ...(JSON.parse(line) as ReportEvent), at: performance.now() })
        }
        const waiters = this.#waiters
        this.#waiters = []
        for (const wake of waiters) wake()
      })
    })
  }

  static async start(): Promise<Reporter> {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return new Reporter(server)
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port
  }

  /** The index the next event will have: pass it as `from` to wait only for later events. */
  mark(): number {
    return this.events.length
  }

  /** The first event from index `from` on that matches; waits for it (event-driven) up to `ms`. */
  async waitFor(match: (e: ReportEvent) => boolean, what: string, options: { from?: number; ms?: number } = {}): Promise<ReportEvent> {
    const from = options.from ?? 0
    const deadline = performance.now() + (options.ms ?? 30_000)
    for (;;) {
      const found = this.events.slice(from).find(match)
      if (found !== undefined) return found
      const left = deadline - performance.now()
      if (left <= 0) {
        const recent = this.events
          .slice(-15)
          .map((e) => JSON.stringify(e))
          .join('\n  ')
        throw new Error(`timed out waiting for ${what}; last events:\n  ${recent}`)
      }
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        timer = setTimeout(resolve, left)
      })
      clearTimeout(timer)
    }
  }

  /** Waits until `count` distinct matching events (by pid) arrived from index `from` on. */
  async waitForPids(count: number, match: (e: ReportEvent) => boolean, what: string, options: { from?: number; ms?: number } = {}): Promise<number[]> {
    let pids: number[] = []
    await this.waitFor(
      () => {
        pids = [
          ...new Set(
            this.events
              .slice(options.from ?? 0)
              .filter(match)
              .map((e) => e.pid),
          ),
        ]
        return pids.length >= count
      },
      what,
      options,
    )
    return pids
  }

  logs(pid?: number): string[] {
    return this.events.filter((e) => e.event === 'log' && (pid === undefined || e.pid === pid)).map((e) => String(e.message))
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

/** The environment for fixture processes: ours, minus the test runner's marks (D11 stays on, as in production). */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^VITEST/.test(k) || k === 'JEST_WORKER_ID' || k === 'NODE_TEST_CONTEXT' || k === 'NODE_OPTIONS' || k === 'TEST' || k === 'pm_id') continue
    env[k] = v
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

/** A child process started by a test: output kept for failure messages, exit awaited, killed by PID at cleanup. */
export class Child {
  readonly proc: ChildProcess
  output = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(proc: ChildProcess) {
    this.proc = proc
    proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
      this.output += s
    })
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => {
      this.output += s
    })
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  }

  static fork(script: string, env: NodeJS.ProcessEnv): Child {
    return new Child(fork(script, [], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }))
  }

  static spawn(command: string, args: string[], options: SpawnOptions): Child {
    return new Child(spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], ...options }))
  }

  get pid(): number {
    return this.proc.pid as number
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Waits for the exit, bounded; fails with the output. */
  async exit(ms = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process ${this.pid} did not exit within ${ms} ms; output:\n${this.output}`)), ms)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Kills every PID still alive (SIGKILL); cleanup after a test, also on failure. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
}

export interface Failure {
  kind: string
  id: number
  error: string
  /** ms since the load started. */
  at: number
  /** performance.now() of the failure, to set beside the reporter's events. */
  t: number
}

export interface LoadResult {
  total: number
  posts: number
  failures: Failure[]
  /** pid → requests it answered. */
  byPid: Map<number, number>
  durationMs: number
}

/**
 * Continuous keep-alive load that never retries: `lanes` loops, each sending one request after
 * another over an http.Agent (keepAlive) — fast GETs, slow GETs and POSTs, each with an id that
 * the answer must echo. Any error, status other than 200 or wrong body is a failure.
 */
export class Load {
  readonly agent: http.Agent
  readonly result: LoadResult = { total: 0, posts: 0, failures: [], byPid: new Map(), durationMs: 0 }
  #stopping = false
  #lanes: Array<Promise<void>> = []
  #nextId = 0
  #t0 = performance.now()
  #countWaiters: Array<{ n: number; resolve: () => void }> = []

  constructor(
    readonly port: number,
    lanes = 8,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: lanes })
    for (let i = 0; i < lanes; i++) this.#lanes.push(this.#lane(i))
  }

  /** Resolves once `more` further requests have completed (successfully or not). */
  progressed(more: number): Promise<void> {
    const n = this.result.total + more
    return new Promise((resolve) => this.#countWaiters.push({ n, resolve }))
  }

  async stop(): Promise<LoadResult> {
    this.#stopping = true
    await Promise.all(this.#lanes)
    this.result.durationMs = Math.round(performance.now() - this.#t0)
    this.agent.destroy()
    for (const w of this.#countWaiters) w.resolve()
    return this.result
  }

  async #lane(lane: number): Promise<void> {
    for (let i = 0; !this.#stopping; i++) {
      const id = this.#nextId++
      const kind = i % 3 === 0 ? 'POST /echo' : lane % 2 === 0 ? 'GET /slow' : 'GET /fast'
      try {
        const body = await this.#request(kind, id)
        const expected = kind === 'POST /echo' ? `posted id-${id} ` : `ok ${id} `
        if (!body.startsWith(expected)) throw new Error(`unexpected body ${JSON.stringify(body)}`)
        const pid = Number(body.slice(expected.length))
        this.result.byPid.set(pid, (this.result.byPid.get(pid) ?? 0) + 1)
      } catch (err) {
        const t = performance.now()
        this.result.failures.push({ kind, id, error: (err as Error).message, at: Math.round(t - this.#t0), t })
      }
      this.result.total++
      if (kind === 'POST /echo') this.result.posts++
      if (this.#countWaiters.length > 0) {
        this.#countWaiters = this.#countWaiters.filter((w) => (w.n <= this.result.total ? (w.resolve(), false) : true))
      }
    }
  }

  #request(kind: string, id: number): Promise<string> {
    const post = kind === 'POST /echo'
    const path = post ? '/echo' : kind === 'GET /slow' ? `/slow?id=${id}&ms=5` : `/fast?id=${id}`
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, path, method: post ? 'POST' : 'GET', agent: this.agent, timeout: 5_000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')))
      if (post) {
        // the body in two writes, so a POST is in flight across more than one packet
        req.write('id-')
        req.end(String(id))
      } else {
        req.end()
      }
    })
  }
}

/** One request on a fresh connection (no agent), for probes. */
export { get } from '../helpers/http.js'

/** The reporter's events within `ms` of each failure: where a loss happened in a restart's timeline. */
export function aroundFailures(r: LoadResult, reporter: Reporter, ms = 300): string {
  return r.failures
    .slice(0, 5)
    .map((f) => {
      const near = reporter.events.filter((e) => Math.abs(e.at - f.t) <= ms && e.event !== 'slow-start')
      return `${f.kind} #${f.id} ${f.error} at ${f.t.toFixed(1)}:\n${near.map((e) => `    ${(e.at - f.t).toFixed(1)} ms ${JSON.stringify({ ...e, at: undefined })}`).join('\n')}`
    })
    .join('\n')
}

/** A summary for assertion messages. */
export function describeLoad(r: LoadResult): string {
  const kinds = new Map<string, number>()
  for (const f of r.failures) kinds.set(`${f.kind}: ${f.error}`, (kinds.get(`${f.kind}: ${f.error}`) ?? 0) + 1)
  return (
    `${r.total} requests (${r.posts} POSTs) in ${r.durationMs} ms, ${r.failures.length} failed` +
    (kinds.size > 0 ? ` — ${[...kinds].map(([k, n]) => `${n}× ${k}`).join('; ')}` : '')
  )
}
