import os from 'node:os'
import { now } from './site.js'

/** How often the drain's stall probe ticks while draining (ms). */
const TICK = 10
/** The lag allowance is bounded: a stalled process cannot hold idle sockets open for long (D14). */
const LAG_CAP = 1000
/** A loaded machine stretches the busy-client window at most this many times (150 ms → 1.2 s). */
const SLOWDOWN_CAP = 8

/**
 * How slow this process and machine are while a drain runs (D1): a slow server sees a busy
 * client's next request later, and must not take it for idle meanwhile. Measured only while
 * draining (D15: nothing runs while serving), by one unref'd timer that ticks every TICK ms: the
 * longest stall is the longest time between two ticks (or since the last one) beyond TICK.
 *
 * Not `perf_hooks.monitorEventLoopDelay`: its histogram counts from its second tick, and records a
 * stall only at the next timers phase. The drain's own first burst (every in-flight response
 * answered with the close marker) is the longest stall of all, right after the drain starts; and a
 * sweep that runs in the check phase right after a long poll phase must see that stall already.
 */
export class DrainLoad {
  #timer: NodeJS.Timeout | null = null
  /** When the probe last ticked (or started), performance.now() ms. */
  #last = 0
  /** The longest gap between ticks seen so far, beyond TICK (ms). */
  #max = 0

  start(): void {
    if (this.#timer !== null) return
    this.#last = now()
    this.#max = 0
    this.#timer = setInterval(this.#tick, TICK)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  #tick = (): void => {
    const t = now()
    if (t - this.#last - TICK > this.#max) this.#max = t - this.#last - TICK
    this.#last = t
  }

  /**
   * How late the event loop has run since the drain started, in ms (0 when not draining), the
   * stall still under way included, at most LAG_CAP.
   */
  lag(): number {
    if (this.#timer === null) return 0
    const ongoing = now() - this.#last - TICK
    return Math.min(LAG_CAP, Math.round(Math.max(this.#max, ongoing, 0)))
  }

  /**
   * The machine's load: the 1-minute load average per core, from 1 (or no figure, as on Windows)
   * up to SLOWDOWN_CAP. Read only by the drain's sweep, never on the request path.
   */
  slowdown(): number {
    const perCore = (os.loadavg()[0] ?? 0) / (os.availableParallelism?.() ?? os.cpus().length)
    return Number.isFinite(perCore) ? Math.min(SLOWDOWN_CAP, Math.max(1, perCore)) : 1
  }
}
