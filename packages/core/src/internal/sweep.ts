import { now } from './site.js'

const MAX_DELAY = 2 ** 31 - 1

/**
 * A sweep that runs this many ms after it was queued followed a stall (a long callback earlier in
 * the same check phase): a next request that arrived meanwhile is still unread in the kernel, so
 * the walk waits for one more poll phase (D1).
 */
const LATE_SWEEP = 10

/**
 * One timer per server, only while draining: `walk(t)` does what is due and returns when the next
 * thing is (Infinity: nothing). Nothing runs while the server is serving (D15).
 */
export class SweepTimer {
  readonly #walk: (t: number) => number
  #timer: NodeJS.Timeout | null = null
  #nextAt = Infinity
  #stopped = false

  constructor(walk: (t: number) => number) {
    this.#walk = walk
  }

  /** A sweep at `at` at the latest. */
  schedule(at: number): void {
    if (this.#stopped || at >= this.#nextAt) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#nextAt = at
    // a grace or linger of up to 2^31−1 ms, counted from a moment already past: never more than a timer holds (D14)
    this.#timer = setTimeout(this.#afterPoll, Math.min(MAX_DELAY, Math.max(0, Math.ceil(at - now()))))
    this.#timer.unref()
  }

  clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#nextAt = Infinity
  }

  /** For good (the tracker detached): nothing is scheduled any more. */
  stop(): void {
    this.#stopped = true
    this.clear()
  }

  /**
   * Timers run before the poll phase reads the sockets. After a stalled event loop (GC, a busy
   * handler, a loaded machine) a next request that arrived during the stall is still unread in
   * the kernel, and its socket would look idle and be closed under it (D1: "no byte of a next
   * request has arrived"). So the walk runs in the check phase, after a poll has read it.
   */
  #afterPoll = (): void => {
    setImmediate(this.#sweep, now(), false)
  }

  #sweep = (queuedAt: number, deferred: boolean): void => {
    if (this.#stopped) return
    const t = now()
    // a stall earlier in this check phase (200 ms of user work in another setImmediate) leaves a
    // next request that arrived meanwhile unread: one more poll phase reads it first (D1)
    if (!deferred && t - queuedAt > LATE_SWEEP) {
      setImmediate(this.#sweep, t, true)
      return
    }
    this.#timer = null
    this.#nextAt = Infinity
    const next = this.#walk(t)
    if (next !== Infinity) this.schedule(next)
  }
}
