import { channels, publish } from '../channels.js'
import { ShutdownDeadlineError } from '../errors.js'
import type { Logger } from '../types.js'
import { progressLine } from './report.js'
import { now } from './site.js'

export interface DeadlineHost {
  readonly abortGrace: number
  readonly logger: Logger | null
  /** D6 step one: the request signals of what still runs abort with the deadline reason. */
  abortInFlight(reason: () => Error): void
  /** D6 step two: signals aborted, what is left destroyed. False when it is too late for that (the drain moved on). */
  forceEnd(reason: () => Error): boolean
  /** For the progress line (D18). */
  progress(): { requestsInFlight: number; connections: number }
  /** The controller the `quiesce:drain:progress` messages name. */
  readonly publicController: object
}

/**
 * One drain's clock (D6, D18): `timeout` is the hard bound. The request signals abort
 * `abortGrace` before it; at it, whatever is left is destroyed (`force()`, which a second signal
 * calls at once). Progress is logged and published about once a second.
 */
export class Deadline {
  /** Resolves once the deadline (or a second signal) forced the end. */
  readonly forced: Promise<void>
  #timedOut = false
  #resolveForced: () => void = () => {}
  readonly #timers: NodeJS.Timeout[]
  readonly #host: DeadlineHost
  readonly #timeout: number

  constructor(host: DeadlineHost, timeout: number) {
    this.#host = host
    this.#timeout = timeout
    this.forced = new Promise<void>((resolve) => {
      this.#resolveForced = resolve
    })
    const t0 = now()
    const progress = setInterval(() => {
      const s = host.progress()
      const remaining = t0 + timeout - now()
      host.logger?.info(progressLine(s.requestsInFlight, s.connections, remaining))
      publish(channels.drainProgress, () => ({
        controller: host.publicController,
        requestsInFlight: s.requestsInFlight,
        connections: s.connections,
        remainingMs: Math.round(remaining),
      }))
    }, 1000)
    this.#timers = [setTimeout(this.#abort, Math.max(0, timeout - host.abortGrace)), setTimeout(() => this.force(), timeout), progress]
    for (const timer of this.#timers) timer.unref()
  }

  get timedOut(): boolean {
    return this.#timedOut
  }

  #reason = (): Error => new ShutdownDeadlineError(this.#timeout)

  #abort = (): void => {
    this.#host.abortInFlight(this.#reason)
  }

  force(): void {
    if (this.#timedOut || !this.#host.forceEnd(this.#reason)) return
    this.#timedOut = true
    this.#resolveForced()
  }

  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer)
  }
}
