/**
 * @quiesce/core/cluster — zero-downtime rolling restarts under `node:cluster`.
 *
 * ```ts
 * import cluster from 'node:cluster'
 * import http from 'node:http'
 * import { graceful } from '@quiesce/core'
 * import { gracefulCluster } from '@quiesce/core/cluster'
 *
 * if (cluster.isPrimary) {
 *   // forks the workers, replaces one that crashes, SIGHUP → rolling restart,
 *   // SIGINT/SIGTERM → every worker drains, then the primary exits
 *   gracefulCluster({ workers: 4 })
 * } else {
 *   // a worker is an ordinary quiesce process: it learns it is in a cluster by itself
 *   const server = http.createServer(app)
 *   graceful(server)
 *   server.listen(3000)
 * }
 * ```
 *
 * A rolling restart replaces the workers one at a time: fork the new one, wait until it is up
 * (its first `listening`, or `notifyReady()`), then ask the old one to drain over IPC — the same
 * drain as SIGTERM, ending in the worker's own exit — and wait for that exit before the next one.
 * It never uses `worker.kill()` / `worker.disconnect()`: those close the worker's servers through
 * node:cluster and wait for every keep-alive connection to end, which under load is never, and
 * Node's own `server.close()` closes idle keep-alive sockets at the very moment a client may be
 * reusing one (the requests lost in a naive restart).
 * @module
 */
import cluster, { type Worker } from 'node:cluster'
import os from 'node:os'
import { ClosedError, QuiesceOptionError } from './errors.js'
import { bool, checkObject, logger, ms, signalList, signalName } from './options.js'
import { FLUSH_LIMIT, flushAndExit, type ClusterCommand } from './internal/process.js'
import { now } from './internal/site.js'
import { forkWorker, RespawnBackoff, type WorkerInfo } from './internal/workers.js'
import type { Logger } from './types.js'

export interface ClusterOptions {
  /** How many workers to keep running. Default: `os.availableParallelism()`. */
  workers?: number
  /** When a new worker counts as up: at its first `listening` event (default), or when it calls `notifyReady()`. */
  waitFor?: 'listening' | 'ready'
  /** ms a new worker has to come up; past it a restart stops and the old worker keeps serving. Default 10 000. */
  startTimeout?: number
  /** ms a draining worker has to exit before it is SIGKILLed. Keep it above the workers' `timeout + hooksTimeout`. Default 20 000. */
  killTimeout?: number
  /** Signals on which every worker drains, then the primary exits (D9); `false` leaves them alone. Default `['SIGINT', 'SIGTERM']`. */
  signals?: readonly string[] | false
  /** The signal that starts a rolling restart; `false` for none. Default `'SIGHUP'`. */
  restartSignal?: string | false
  /** Replace a worker that exits without being asked (a crash, a fatal error's exit 1). Default true. */
  respawn?: boolean
  /** When a signal started the shutdown, exit the primary once every worker is gone: 0 if all drained cleanly, else 1. Default true. */
  exit?: boolean
  /** Where the primary's lines go; `false` for silence. Default: `console`. */
  logger?: Logger | false
}

/** How one worker left. */
export interface WorkerExit {
  /** node:cluster's worker id. */
  id: number
  pid: number | undefined
  /** The exit code (0: it drained cleanly), or null when a signal ended it. */
  code: number | null
  signal: string | null
  /** It did not exit within `killTimeout` and was SIGKILLed. */
  killed: boolean
  /** ms from the drain request to the exit. */
  drainMs: number
}

export interface ClusterReport {
  /** Every worker that was asked to leave exited 0 by itself (and, for a restart, every worker was replaced). */
  ok: boolean
  durationMs: number
  /** The workers that left, in order. */
  workers: WorkerExit[]
  /** Why a restart stopped before replacing every worker. */
  error?: string
}

export type ClusterState = 'running' | 'restarting' | 'draining' | 'closed'

export interface ClusterController {
  readonly state: ClusterState
  /** The workers currently serving (or starting to). */
  readonly workers: readonly Worker[]
  /**
   * Replaces every worker, one at a time, without dropping a request. A call while a restart runs
   * queues one more restart after it (calls coalesce), so that workers forked before the call are
   * replaced too. Resolves with a report; `ok` is false when a new worker failed to start (the
   * remaining old ones keep serving) or the shutdown began.
   */
  restart(): Promise<ClusterReport>
  /** Drains every worker and resolves once all have exited (idempotent: every call returns the same promise). */
  shutdown(): Promise<ClusterReport>
}

const KNOWN = new Set(['workers', 'waitFor', 'startTimeout', 'killTimeout', 'signals', 'restartSignal', 'respawn', 'exit', 'logger'])
/**
 * Runs a pool of node:cluster workers in the primary: forks them, replaces one that exits
 * unexpectedly, restarts them one at a time on `restartSignal` or `restart()`, and drains them all
 * on `signals` or `shutdown()`. Call it once, in the primary.
 */
export function gracefulCluster(options?: ClusterOptions): ClusterController {
  const o = resolveClusterOptions(options)
  if (!cluster.isPrimary) throw new Error('quiesce: gracefulCluster() runs in the cluster primary; in a worker, use graceful() as usual')
  return new ClusterPool(o)
}

/**
 * Worker side: tells the supervisor this process is ready to serve — PM2 with `wait_ready: true`,
 * or `gracefulCluster({ waitFor: 'ready' })` — by sending `'ready'` over IPC. Call it once the
 * server listens and whatever it needs (database, caches) is warm. Returns false when the process
 * has no supervisor to tell.
 */
export function notifyReady(): boolean {
  if (typeof process.send !== 'function' || !process.connected) return false
  process.send('ready')
  return true
}

type Resolved = Required<Omit<ClusterOptions, 'logger' | 'signals' | 'restartSignal'>> & {
  logger: Logger | null
  signals: readonly string[]
  restartSignal: string | null
}

class ClusterPool implements ClusterController {
  readonly #o: Resolved
  #state: ClusterState = 'running'
  readonly #infos = new Map<Worker, WorkerInfo>()
  #restartChain: Promise<unknown> = Promise.resolve()
  #queuedRestart: Promise<ClusterReport> | null = null
  #shutdown: Promise<ClusterReport> | null = null
  #stopSignal: string | null = null
  readonly #backoff = new RespawnBackoff()
  readonly #handlers = new Map<string, () => void>()

  constructor(o: Resolved) {
    this.#o = o
    for (const signal of o.signals) this.#on(signal, () => this.#onStopSignal(signal))
    if (o.restartSignal !== null) {
      const signal = o.restartSignal
      this.#on(signal, () => {
        this.#log('info', `quiesce: ${signal} — rolling restart of ${this.workers.length} workers`)
        this.restart().catch((err: unknown) => this.#log('error', `quiesce: restart failed — ${String(err)}`))
      })
    }
    for (let i = 0; i < o.workers; i++) this.#fork('member')
  }

  get state(): ClusterState {
    return this.#state
  }

  get workers(): Worker[] {
    return [...this.#infos.values()].filter((i) => i.role === 'member').map((i) => i.worker)
  }

  restart(): Promise<ClusterReport> {
    if (this.#shutdown !== null) return Promise.reject(new ClosedError('restart()'))
    if (this.#queuedRestart !== null) return this.#queuedRestart
    const run = this.#restartChain.then(() => {
      this.#queuedRestart = null
      return this.#roll()
    })
    this.#queuedRestart = run
    this.#restartChain = run.catch(() => {})
    return run
  }

  shutdown(): Promise<ClusterReport> {
    this.#shutdown ??= this.#drainAll()
    return this.#shutdown
  }

  // ── rolling restart ─────────────────────────────────────────────────────

  async #roll(): Promise<ClusterReport> {
    const t0 = now()
    const left: WorkerExit[] = []
    const stop = (error: string): ClusterReport => {
      this.#log('error', `quiesce: rolling restart stopped after ${left.length} of ${old.length} workers: ${error}`)
      return { ok: false, durationMs: Math.round(now() - t0), workers: left, error }
    }
    const old = this.workers
    if (this.#state !== 'running') return stop('the cluster is shutting down')
    this.#state = 'restarting'
    try {
      for (const worker of old) {
        const info = this.#infos.get(worker)
        // gone already (a crash; respawn replaced it with a fresh worker)
        if (info === undefined || info.role !== 'member') continue
        // replacing a worker that is still starting would drain one that may not listen to us yet
        await info.whenUp.catch(() => {})
        if (this.#shutdown !== null) return stop('the cluster is shutting down')
        if (info.role !== 'member') continue
        const next = this.#fork('candidate')
        info.successor = next
        try {
          await next.whenUp
        } catch (err) {
          info.successor = null
          // the old worker keeps serving (or, if it died meanwhile, is respawned); the new one is drained: it may have taken connections
          if (info.gone) this.#respawn(info)
          if (next.role === 'candidate') void this.#drain(next)
          return stop(`new worker ${next.worker.id} did not come up: ${(err as Error).message}`)
        }
        if (this.#shutdown !== null) return stop('the cluster is shutting down')
        next.role = 'member'
        // (if the old one died while its successor started, this records how)
        const exit = await this.#drain(info)
        left.push(exit)
        this.#log(
          'info',
          `quiesce: worker ${exit.id} (pid ${exit.pid}) replaced by worker ${next.worker.id} (pid ${next.worker.process.pid}); it ${describeExit(exit)}`,
        )
      }
    } finally {
      if (this.#state === 'restarting') this.#state = 'running'
    }
    const ok = left.every(cleanExit)
    const durationMs = Math.round(now() - t0)
    this.#log(
      ok ? 'info' : 'warn',
      `quiesce: rolling restart done: ${left.length} workers replaced in ${durationMs} ms${ok ? '' : ', not all of them drained cleanly'}`,
    )
    return { ok, durationMs, workers: left }
  }

  // ── shutdown ────────────────────────────────────────────────────────────

  #onStopSignal(signal: string): void {
    if (this.#shutdown !== null) {
      this.#log('warn', `quiesce: ${signal} again — forcing every worker's drain now`)
      for (const info of this.#infos.values()) this.#send(info, { quiesce: 'force' })
      return
    }
    this.#stopSignal = signal
    this.#log('info', `quiesce: ${signal} — draining ${this.#infos.size} workers`)
    void this.shutdown()
  }

  async #drainAll(): Promise<ClusterReport> {
    const t0 = now()
    this.#state = 'draining'
    this.#backoff.cancel()
    const workers = await Promise.all([...this.#infos.values()].map((info) => this.#drain(info)))
    this.#state = 'closed'
    for (const [signal, handler] of this.#handlers) process.removeListener(signal, handler)
    this.#handlers.clear()
    const ok = workers.every(cleanExit)
    const report: ClusterReport = { ok, durationMs: Math.round(now() - t0), workers }
    this.#log(
      ok ? 'info' : 'warn',
      `quiesce: cluster closed in ${report.durationMs} ms: ${workers.map((w) => `worker ${w.id} ${describeExit(w)}`).join(', ') || 'no workers'}`,
    )
    if (this.#stopSignal !== null && this.#o.exit) await flushAndExit(ok ? 0 : 1, this.#o.logger === null ? [] : [this.#o.logger], FLUSH_LIMIT)
    return report
  }

  // ── one worker ──────────────────────────────────────────────────────────

  #fork(role: 'member' | 'candidate'): WorkerInfo {
    const info = forkWorker(role, {
      startTimeout: this.#o.startTimeout,
      waitFor: this.#o.waitFor,
      log: (level, message) => this.#log(level, message),
      onExit: (info, code, signal) => this.#onExit(info, code, signal),
    })
    this.#infos.set(info.worker, info)
    return info
  }

  /** A worker exited: forget it; a member nobody asked to leave is replaced (by its successor, or a respawn). */
  #onExit(info: WorkerInfo, code: number | null, signal: string | null): void {
    this.#infos.delete(info.worker)
    if (info.role !== 'member') return
    const what = `worker ${info.worker.id} (pid ${info.worker.process.pid}) exited unexpectedly (${signal ?? `code ${code}`})`
    if (info.successor !== null) this.#log('warn', `quiesce: ${what}; worker ${info.successor.worker.id}, starting, replaces it`)
    else if (!this.#o.respawn || this.#shutdown !== null) this.#log('warn', `quiesce: ${what}`)
    else this.#respawn(info, what)
  }

  /** Forks a member in place of one that died; one that died before it was up is likely to die again: back off. */
  #respawn(info: WorkerInfo, what = `worker ${info.worker.id} (pid ${info.worker.process.pid}) is gone`): void {
    if (!this.#o.respawn || this.#shutdown !== null) return
    const wait = this.#backoff.delayAfter(info)
    this.#log('warn', `quiesce: ${what}; forking a replacement${wait > 0 ? ` in ${wait} ms` : ''}`)
    this.#backoff.schedule(wait, () => {
      if (this.#shutdown === null) this.#fork('member')
    })
  }

  /** Asks the worker to drain and waits for its exit; SIGKILL past `killTimeout`. */
  async #drain(info: WorkerInfo): Promise<WorkerExit> {
    if (info.role !== 'leaving') {
      info.role = 'leaving'
      info.drainRequestedAt = now()
      // a worker that never listened may not have set quiesce up yet: a signal reaches it either way
      if (!info.gone && info.listening) this.#send(info, { quiesce: 'drain' })
      else if (!info.gone) info.worker.process.kill('SIGTERM')
    }
    const killTimer = setTimeout(
      () => {
        info.killed = true
        this.#log(
          'error',
          `quiesce: worker ${info.worker.id} (pid ${info.worker.process.pid}) did not exit within killTimeout (${this.#o.killTimeout} ms); SIGKILL`,
        )
        info.worker.process.kill('SIGKILL')
      },
      Math.max(0, info.drainRequestedAt + this.#o.killTimeout - now()),
    )
    const { code, signal } = await info.exited
    clearTimeout(killTimer)
    return { id: info.worker.id, pid: info.worker.process.pid, code, signal, killed: info.killed, drainMs: Math.round(now() - info.drainRequestedAt) }
  }

  #send(info: WorkerInfo, command: ClusterCommand): void {
    if (!info.worker.isConnected()) {
      // no IPC left (the worker is disconnecting on its own): a signal says the same (a second one forces, D9)
      info.worker.process.kill('SIGTERM')
      return
    }
    info.worker.send(command)
  }

  #on(signal: string, handler: () => void): void {
    this.#handlers.set(signal, handler)
    process.on(signal as NodeJS.Signals, handler)
  }

  #log(level: 'info' | 'warn' | 'error', message: string): void {
    try {
      this.#o.logger?.[level](message)
    } catch {
      // a broken logger must not stop a restart
    }
  }
}

function cleanExit(e: WorkerExit): boolean {
  return e.code === 0 && !e.killed
}

function describeExit(e: WorkerExit): string {
  if (e.killed) return `was killed after ${e.drainMs} ms`
  return `exited ${e.signal ?? `with code ${e.code}`} after ${e.drainMs} ms`
}

function resolveClusterOptions(input: unknown): Resolved {
  const o = checkObject('cluster options', input)
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new QuiesceOptionError(key, `one of the known options (${[...KNOWN].join(', ')})`, o[key])
  }
  const workers = o.workers === undefined ? os.availableParallelism() : o.workers
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1) {
    throw new QuiesceOptionError('workers', 'a whole number ≥ 1', workers)
  }
  const waitFor = o.waitFor === undefined ? 'listening' : o.waitFor
  if (waitFor !== 'listening' && waitFor !== 'ready') throw new QuiesceOptionError('waitFor', '"listening" or "ready"', waitFor)
  const signals = signalList('signals', o.signals)
  const restartSignal = o.restartSignal === false ? null : signalName('restartSignal', o.restartSignal ?? 'SIGHUP')
  if (restartSignal !== null && signals.includes(restartSignal)) {
    throw new QuiesceOptionError('restartSignal', 'a signal not listed in `signals`', restartSignal)
  }
  return {
    workers,
    waitFor,
    startTimeout: ms('startTimeout', o.startTimeout, 10_000, 1),
    killTimeout: ms('killTimeout', o.killTimeout, 20_000, 1),
    signals,
    restartSignal,
    respawn: bool('respawn', o.respawn, true),
    exit: bool('exit', o.exit, true),
    logger: logger(o.logger),
  }
}
