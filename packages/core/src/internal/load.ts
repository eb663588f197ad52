import os from 'node:os'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

/** The event-loop delay monitor's sampling interval while draining (ms). */
const LAG_RESOLUTION = 10
/** The lag allowance is bounded: a stalled process cannot hold idle sockets open for long (D14). */
const LAG_CAP = 1000
/** A loaded machine stretches the busy-client window at most this many times (150 ms → 1.2 s). */
const SLOWDOWN_CAP = 8

/**
 * How slow this process and machine are while a drain runs (D1): a slow server sees a busy
 * client's next request later, and must not take it for idle meanwhile. The event-loop delay is
 * sampled only while draining (D15: nothing runs while serving).
 */
export class DrainLoad {
  #delay: IntervalHistogram | null = null

  start(): void {
    if (this.#delay !== null) return
    this.#delay = monitorEventLoopDelay({ resolution: LAG_RESOLUTION })
    this.#delay.enable()
  }

  stop(): void {
    this.#delay?.disable()
    this.#delay = null
  }

  /** How late the event loop has run since the drain started, in ms (0 when not draining), at most LAG_CAP. */
  lag(): number {
    const h = this.#delay
    if (h === null || h.count === 0) return 0
    return Math.min(LAG_CAP, Math.max(0, Math.round(h.max / 1e6 - LAG_RESOLUTION)))
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
