/**
 * One node:cluster worker as the cluster primary sees it: its fork and the listeners that tell
 * when it is up and when it is gone, and the back-off for replacing one that keeps dying.
 * The pool (cluster.ts) decides what to do about an exit; this module only reports it.
 */
import cluster, { type Worker } from 'node:cluster'
import { now } from './site.js'

type WorkerExitStatus = { code: number | null; signal: string | null }

export interface WorkerInfo {
  readonly worker: Worker
  /** `member`: counted in the pool; `candidate`: a restart waits for it; `leaving`: asked to drain. */
  role: 'member' | 'candidate' | 'leaving'
  listening: boolean
  up: boolean
  /** When it came up (0: not yet). */
  upAt: number
  readonly whenUp: Promise<void>
  readonly exited: Promise<WorkerExitStatus>
  gone: boolean
  /** The worker a restart is starting in its place: if this one dies meanwhile, that one replaces it (no respawn). */
  successor: WorkerInfo | null
  drainRequestedAt: number
  killed: boolean
}

/** What a forked worker's listeners need from the pool. */
interface WorkerWiring {
  readonly startTimeout: number
  readonly waitFor: 'listening' | 'ready'
  log(level: 'warn', message: string): void
  /** The worker exited: `gone` is set, `whenUp` failed if it was not up, `exited` settled. */
  onExit(info: WorkerInfo, code: number | null, signal: string | null): void
}

/** Respawn back-off for workers that die before they come up, or soon after: 100 ms, doubling, at most 10 s. */
const RESPAWN_FIRST = 100
const RESPAWN_MAX = 10_000
/** A worker that dies within this many ms of coming up crashed at start-up (D21): it is replaced with back-off too. */
const MIN_UPTIME = 1000

/** A fresh WorkerInfo and the functions that settle its two promises (kept apart: only the listeners settle them). */
function newWorkerInfo(worker: Worker, role: 'member' | 'candidate') {
  let markUp: () => void = () => {}
  let failUp: (err: Error) => void = () => {}
  const whenUp = new Promise<void>((resolve, reject) => {
    markUp = resolve
    failUp = reject
  })
  // a member's start is nobody's promise to await; its failure is handled at its exit
  whenUp.catch(() => {})
  let markExited: (e: WorkerExitStatus) => void = () => {}
  const exited = new Promise<WorkerExitStatus>((resolve) => {
    markExited = resolve
  })
  const info: WorkerInfo = {
    worker,
    role,
    listening: false,
    up: false,
    upAt: 0,
    whenUp,
    exited,
    gone: false,
    successor: null,
    drainRequestedAt: 0,
    killed: false,
  }
  return { info, markUp, failUp, markExited }
}

/**
 * Forks a worker and wires its events into a WorkerInfo: up at its first `listening` (or its
 * `'ready'` message), failed past `startTimeout` or at an exit before that.
 */
export function forkWorker(role: 'member' | 'candidate', wiring: WorkerWiring): WorkerInfo {
  const worker = cluster.fork()
  const { info, markUp, failUp, markExited } = newWorkerInfo(worker, role)
  const startTimer = setTimeout(() => {
    failUp(new Error(`not up within startTimeout (${wiring.startTimeout} ms)`))
    if (info.role === 'member')
      wiring.log('warn', `quiesce: worker ${worker.id} (pid ${worker.process.pid}) is not up after startTimeout (${wiring.startTimeout} ms)`)
  }, wiring.startTimeout)
  const becameUp = (): void => {
    if (info.up) return
    info.up = true
    info.upAt = now()
    clearTimeout(startTimer)
    markUp()
  }
  worker.on('listening', () => {
    info.listening = true
    if (wiring.waitFor === 'listening') becameUp()
  })
  worker.on('message', (message: unknown) => {
    if (message === 'ready' && wiring.waitFor === 'ready') becameUp()
  })
  // a send to a worker that just died reports here; its 'exit' follows and is what counts
  worker.on('error', (err: Error) => wiring.log('warn', `quiesce: worker ${worker.id}: ${err.message}`))
  worker.on('exit', (code: number | null, signal: string | null) => {
    clearTimeout(startTimer)
    failUp(new Error(`it exited (${signal ?? `code ${code}`}) before it was up`))
    info.gone = true
    markExited({ code, signal })
    wiring.onExit(info, code, signal)
  })
  return info
}

/**
 * The respawn back-off: how long to wait before replacing a dead worker, and the pending
 * replacements, so that a shutdown can cancel them.
 */
export class RespawnBackoff {
  #startFailures = 0
  readonly #timers = new Set<NodeJS.Timeout>()

  /** ms to wait before replacing `info`: 0 after a worker that ran a while, else doubling with each start-up crash in a row. */
  delayAfter(info: WorkerInfo): number {
    // one that never came up, or crashed right after listening, is likely to do it again: back off
    if (!info.up || now() - info.upAt < MIN_UPTIME) {
      const wait = Math.min(RESPAWN_FIRST * 2 ** this.#startFailures, RESPAWN_MAX)
      this.#startFailures++
      return wait
    }
    this.#startFailures = 0
    return 0
  }

  schedule(wait: number, respawn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      respawn()
    }, wait)
    this.#timers.add(timer)
  }

  cancel(): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }
}
