import { channels, publish } from '../channels.js'
import { DrainingError, ShutdownDeadlineError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { ForcedItem, ShutdownReason, ShutdownReport, Stats } from '../types.js'
import { drainTimeout, type Limits } from './budget.js'
import { Deadline } from './deadline.js'
import { hookReports, runHooksInOrder, runHooksTogether, type HookEntry, type HookRun } from './hooks.js'
import type { PhaseMachine } from './phases.js'
import { buildReport, reportLine, type DrainCounts } from './report.js'
import { now } from './site.js'
import type { Trackers } from './trackers.js'

export interface StartOptions {
  readonly reason: ShutdownReason
  readonly signal?: string | undefined
  readonly timeout?: number | undefined
}

/**
 * What a drain works on: its controller's parts, shared with the controller, which keeps
 * registering hooks, counting requests and naming what is forced while the drain runs.
 */
export interface DrainHost {
  readonly options: ResolvedOptions
  readonly limits: Limits
  /** The controller's name in logs. */
  readonly name: string
  readonly phases: PhaseMachine
  readonly trackers: Trackers
  readonly beforeHooks: readonly HookEntry[]
  readonly onShutdownHooks: readonly HookEntry[]
  readonly counts: Readonly<DrainCounts>
  /** What was forced, for the report (D6). */
  readonly forcedItems: ForcedItem[]
  /** What the user holds: the `controller` of every `quiesce:*` message. */
  readonly publicController: object
  stats(): Stats
  /** Names one more forced item (a failed hook, D8). */
  forced(item: ForcedItem): void
  /** The announce phase begins: the `draining` signal aborts with `reason`, a pause ends (D4, D13). */
  announced(reason: DrainingError): void
  /** The report is out: nothing is left for a signal to drain (D20). */
  ended(): void
}

/**
 * A controller's drain, from the announce phase to the report (D4–D8, D18), run once: the steps in
 * order, each taken on every server at once (`Trackers`), the phases (`phases.ts`) moved as they
 * go. The clock (`Deadline`, D6) may cut any step short.
 */
export class Drain {
  readonly #host: DrainHost
  #startedAt = 0
  /** Armed when the drain starts: a second signal takes the deadline's step at once. */
  #deadline: Deadline | null = null
  /** A second signal (D9) forced this drain (the report says so; `ok` says whether anything was cut). */
  #forcedBySignal = false
  /** Resolves, with the words for why, when a second signal comes while the cleanup hooks run: they are cut. */
  readonly #hooksCut: Promise<string>
  #cutHooks: (why: string) => void = () => {}

  constructor(host: DrainHost) {
    this.#host = host
    this.#hooksCut = new Promise((resolve) => {
      this.#cutHooks = resolve
    })
  }

  async run(o: StartOptions): Promise<ShutdownReport> {
    const h = this.#host
    const t0 = now()
    this.#startedAt = t0
    const timeout = drainTimeout(o.timeout, h.limits)
    this.#announce(o, timeout)
    const deadline = this.#armDeadline(timeout)
    const before = this.#announcePhase(timeout, deadline.forced)
    await Promise.race([before.done, deadline.forced])
    if (h.phases.to('closing')) h.trackers.closeListeners()

    await Promise.race([h.trackers.whenAllClosed(), deadline.forced])
    // after a force, wait for the servers' close too (destroyed sockets close within a tick), bounded
    if (deadline.timedOut) await Promise.race([h.trackers.whenAllClosed(), delay(1000)])
    deadline.clear()
    const drainMs = now() - t0

    // cleanup hooks (D8): last registered first, each limited, all under the overall limit
    h.phases.to('hooks')
    const hookRuns = await runHooksInOrder([...h.onShutdownHooks].reverse(), h.limits.hooksTimeout, this.#hooksCut)
    // before-shutdown hooks the deadline overtook are reported too: cut at the deadline, timed out (D6, D8)
    const beforeRuns = await before.runs
    const hooks = hookReports([...beforeRuns, ...hookRuns], h.options.logger, (item) => h.forced(item))

    h.phases.to('closed')
    h.trackers.detach()
    const report = buildReport({
      reason: o.reason,
      signal: o.signal,
      durationMs: now() - t0,
      drainMs,
      timedOut: deadline.timedOut,
      forcedBySignal: this.#forcedBySignal,
      counts: h.counts,
      // a copy: the report is final, a callback failing later (closeUpgraded's promise) must not change it (D18)
      forced: [...h.forcedItems],
      hooks,
    })
    return this.#publish(report)
  }

  /**
   * A second signal (D9): the deadline now — or, once the cleanup hooks run, the hook still
   * running is cut (its signal aborts) and the rest are not run.
   */
  force(): void {
    this.#forcedBySignal = true
    if (this.#host.phases.phase === 'hooks') this.#cutHooks('a second signal forced the shutdown')
    else this.#deadline?.force()
  }

  /**
   * The framework is about to destroy every connection itself (Fastify's `forceCloseConnections:
   * true`, right after `preClose`). What still runs is cut here instead, a moment earlier, so that
   * each request is named in the report as forced (D6) rather than vanishing as a client abort;
   * its signal aborts with the deadline reason, the drain's deadline having come early.
   */
  frameworkForcing(): void {
    const phase = this.#host.phases.phase
    if (phase !== 'announcing' && phase !== 'closing') return
    const elapsed = Math.round(now() - this.#startedAt)
    this.#host.trackers.abortInFlight(() => new ShutdownDeadlineError(elapsed))
    this.#host.trackers.destroyAll()
  }

  /** Draining starts (D4 announce): the `draining` signal aborts, a pause ends, every server marks its responses. */
  #announce(o: StartOptions, timeout: number): void {
    const h = this.#host
    h.phases.to('announcing')
    h.announced(new DrainingError(o.signal ?? o.reason))
    publish(channels.drainStart, () => ({ controller: h.publicController, reason: o.reason, signal: o.signal, timeout }))
    const announcing = h.options.readinessDelay > 0 ? `, announcing for ${h.options.readinessDelay} ms` : ''
    h.options.logger?.info(`quiesce: draining ${h.name} (${o.signal ?? o.reason}), deadline in ${timeout} ms${announcing}`)
    h.trackers.startDrain()
  }

  /** The drain's clock (D6): request signals abort `abortGrace` before `timeout`; at it, or at a second signal, the rest is forced. */
  #armDeadline(timeout: number): Deadline {
    const h = this.#host
    const host = {
      abortGrace: h.options.abortGrace,
      logger: h.options.logger,
      abortInFlight: (reason: () => Error) => h.trackers.abortInFlight(reason),
      forceEnd: (reason: () => Error) => this.#forceEnd(reason),
      progress: () => h.stats(),
      publicController: h.publicController,
    }
    this.#deadline = new Deadline(host, timeout)
    return this.#deadline
  }

  /**
   * The announce phase (D4): listeners open, markers on, readiness 503, before-shutdown hooks.
   * `done` when both the delay and the hooks are; the deadline (`forced`) cuts the hooks still
   * running, which `runs` then reports as timed out.
   */
  #announcePhase(timeout: number, forced: Promise<void>): { done: Promise<unknown>; runs: Promise<HookRun[]> } {
    const h = this.#host
    const cut = forced.then(() => (this.#forcedBySignal ? 'a second signal forced the shutdown' : "the drain's deadline"))
    const runs = h.beforeHooks.length > 0 ? runHooksTogether(h.beforeHooks, timeout, cut) : Promise.resolve([])
    const announce = h.options.readinessDelay > 0 ? delay(Math.min(h.options.readinessDelay, timeout)) : Promise.resolve()
    return { done: Promise.all([runs, announce]), runs }
  }

  /** D6 at the deadline or a second signal: signals aborted, listeners closed (if still announcing), the rest destroyed. */
  #forceEnd(reason: () => Error): boolean {
    const { phases, trackers } = this.#host
    const announcing = phases.phase === 'announcing'
    if (!phases.to('forced')) return false
    trackers.abortInFlight(reason)
    if (announcing) trackers.closeListeners()
    trackers.destroyAll()
    return true
  }

  /** The report goes to the logger and to `quiesce:drain:end` (D18). */
  #publish(report: ShutdownReport): ShutdownReport {
    const h = this.#host
    if (report.ok) h.options.logger?.info(reportLine(report))
    else h.options.logger?.warn(reportLine(report))
    publish(channels.drainEnd, () => ({ controller: h.publicController, report }))
    h.ended()
    return report
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
