import { setMaxListeners } from 'node:events'
import { channels, publish } from '../channels.js'
import { ClosedError, DrainingError, ShutdownDeadlineError } from '../errors.js'
import { resolveOptions, resolvePauseOptions, resolveResumeOptions, resolveShutdownOptions, type ResolvedOptions } from '../options.js'
import type {
  AnyServer,
  Controller,
  ForcedItem,
  HookOptions,
  PauseOptions,
  ResumeOptions,
  ShutdownHook,
  ShutdownOptions,
  ShutdownReason,
  ShutdownReport,
  State,
  Stats,
} from '../types.js'
import { drainTimeout, fitBudget, type Limits } from './budget.js'
import { addHook, hookReports, runHooksInOrder, runHooksTogether, type HookEntry } from './hooks.js'
import { answer500, answer503 } from './answers.js'
import { PauseSwitch } from './pause.js'
import { PhaseMachine } from './phases.js'
import { coordinator, type Coordinated } from './process.js'
import { Deadline } from './deadline.js'
import { buildReport, errorStack, reportLine, type DrainCounts } from './report.js'
import { assertServer } from './servers.js'
import { deferred, now, type AnyRequest, type AnyResponse, type TrackerHost } from './site.js'
import { Tracker } from './tracker.js'

export interface ControllerMode {
  /** Run the gate in Node's dispatch (bare Node); adapters gate in their middleware instead. */
  readonly gate: boolean
  /** Who closes the listener when draining: quiesce, or the framework (Fastify's `close()`). */
  readonly listener: 'quiesce' | 'framework'
  /** Extra option names an adapter accepts and reads itself. */
  readonly extraOptions?: readonly string[]
  /** Shown in logs. */
  readonly name: string
}

interface StartOptions {
  readonly reason: ShutdownReason
  readonly signal?: string | undefined
  readonly timeout?: number | undefined
}

/**
 * The controller: the drain's state machine (`phases.ts`) over one or more servers, the hooks and
 * the report. Every package's public controller delegates to one of these (`facade.ts`); the
 * process-wide coordinator drives it through `Coordinated`, its servers' trackers through
 * `TrackerHost`.
 */
export class GracefulController implements Controller, Coordinated, TrackerHost {
  readonly options: ResolvedOptions
  readonly mode: ControllerMode
  /** Effective limits after fitting the supervisor's budget (D19). */
  readonly limits: Limits
  readonly #phases = new PhaseMachine()
  readonly #trackers = new Map<AnyServer, Tracker>()
  readonly #drainingController = new AbortController()
  #shutdown: Promise<ShutdownReport> | null = null
  #startedAt = 0
  readonly #pauses: PauseSwitch
  readonly #onShutdownHooks: HookEntry[] = []
  readonly #beforeHooks: HookEntry[] = []
  readonly #forced: ForcedItem[] = []
  readonly #counts: DrainCounts = { completed: 0, aborted: 0, rejected: 0, idleClosed: 0 }
  /** The deadline's step (D6), armed when the drain starts: a second signal takes it at once. */
  #force: () => void = () => {}
  /** Resolves when the listener closes: after the announce phase and the before-shutdown hooks (D4). */
  readonly #listenerRelease = deferred()
  /** What the user holds (the facade): the `controller` of every `quiesce:*` message. */
  #public: object = this

  constructor(options: unknown, mode: ControllerMode) {
    this.options = resolveOptions(options, mode.extraOptions)
    this.mode = mode
    setMaxListeners(0, this.#drainingController.signal)
    this.limits = fitBudget(this.options)
    const self = this
    this.#pauses = new PauseSwitch({
      get servers() {
        return self.#trackers.keys()
      },
      get draining() {
        return self.isDraining
      },
      reject503: (res) => this.reject503(res),
      changed: (paused) => {
        this.#phases.to(paused ? 'paused' : 'running')
      },
    })
    coordinator().register(this)
  }

  // ── Controller ──────────────────────────────────────────────────────────

  get state(): State {
    return this.#phases.state
  }

  get draining(): AbortSignal {
    return this.#drainingController.signal
  }

  get ready(): boolean {
    return !this.#phases.draining
  }

  /** Draining has started (the announce phase included). */
  get isDraining(): boolean {
    return this.#phases.draining
  }

  /** The object the user holds for this controller, named in diagnostics_channel messages (D18). */
  exposedAs(facade: object): void {
    this.#public = facade
  }

  get servers(): AnyServer[] {
    return [...this.#trackers.keys()]
  }

  stats(): Stats {
    const total = { connections: 0, idle: 0, upgraded: 0, inFlight: 0, sessions: 0 }
    for (const t of this.#trackers.values()) for (const [k, v] of Object.entries(t.stats())) total[k as keyof typeof total] += v
    return {
      state: this.state,
      connections: total.connections,
      idleConnections: total.idle,
      requestsInFlight: total.inFlight,
      upgradedSockets: total.upgraded,
      http2Sessions: total.sessions,
    }
  }

  /**
   * Tracks one more server with this controller (Express/Koa before the first request, D17; a
   * second listener). A server another controller drains is refused with a TypeError (D20).
   */
  attach(server: unknown): this {
    assertServer(server)
    if (this.#trackers.has(server)) return this
    if (this.#phases.phase === 'closed') throw new ClosedError('attach()')
    const tracker = new Tracker(server, this, { gate: this.mode.gate })
    if (server.listening) coordinator().register(this)
    this.#trackers.set(server, tracker)
    this.#pauses.current?.adopt(server)
    if (this.isDraining) {
      tracker.startDrain()
      if (this.#phases.phase !== 'announcing') this.#closeListenerOf(tracker)
    }
    return this
  }

  /** The tracker of a server this controller drains. */
  trackerOf(server: AnyServer): Tracker | undefined {
    return this.#trackers.get(server)
  }

  shutdown(options?: ShutdownOptions): Promise<ShutdownReport> {
    const o = resolveShutdownOptions(options)
    return this.start({ reason: 'manual', timeout: o.timeout })
  }

  /**
   * Starts the drain (idempotent: every call returns the first call's promise). The promise is in
   * place before the drain's first step runs: code called back from that step (a `draining`
   * listener) that asks again gets the same drain, not a second one.
   */
  start(options: StartOptions): Promise<ShutdownReport> {
    if (this.#shutdown !== null) return this.#shutdown
    const report = deferredReport()
    this.#shutdown = report.promise
    this.#drain(options).then(report.resolve, report.reject)
    return this.#shutdown
  }

  /** A second signal: the deadline now (D9). */
  force(): void {
    if (this.#shutdown === null) void this.start({ reason: 'signal', timeout: 0 })
    else this.#force()
  }

  onShutdown(hook: ShutdownHook, options?: HookOptions): () => void {
    return addHook(this.#onShutdownHooks, hook, options)
  }

  beforeShutdown(hook: ShutdownHook, options?: HookOptions): () => void {
    return addHook(this.#beforeHooks, hook, options)
  }

  // ── pause / resume (D13) ─────────────────────────────────────────────────

  pause(options?: PauseOptions): Promise<void> {
    const o = resolvePauseOptions(options)
    return this.#pauses.pause(o.mode, o.maxWait)
  }

  resume(options?: ResumeOptions): Promise<void> {
    const o = resolveResumeOptions(options)
    return this.#pauses.resume(o.retries)
  }

  // ── TrackerHost: the gate, the counts, failures ──────────────────────────

  /** Decides whether a request reaches its handler: true, false (quiesce answered it), or later (hold). */
  admit(req: AnyRequest, res: AnyResponse): boolean | Promise<boolean> {
    if (Tracker.refused(res)) return false
    const pause = this.#pauses.current
    if (pause !== null) return pause.admit(req, res)
    // D4: during the announce phase requests are served normally (with Connection: close); D3's reject mode starts with the listener's close
    if (this.isDraining && this.#phases.phase !== 'announcing' && this.options.duringDrain === 'reject') {
      this.#counts.rejected++
      this.reject503(res)
      return false
    }
    return true
  }

  /** 503 with Retry-After; on HTTP/1 with `Connection: close` (our marker, so quiesce closes the socket gracefully after it). */
  reject503(res: AnyResponse): void {
    answer503(res, this.options.retryAfter)
  }

  handlerFailed(error: unknown, req: AnyRequest, res: AnyResponse): void {
    this.options.logger?.error(`quiesce: ${req.method ?? ''} ${req.url ?? ''} failed; answered 500 — ${errorStack(error)}`)
    answer500(res)
  }

  callbackFailed(what: string, error: unknown): void {
    this.options.logger?.error(`quiesce: ${what} failed — ${errorStack(error)}`)
    this.forced({ kind: 'hook', name: what, timedOut: false })
  }

  /**
   * A server closed. Outside a drain (`server.close()`, the test helper) and once every server of
   * this controller is closed, nothing is left for a signal to drain: the process-wide
   * coordinator lets go of the controller (D20), until a server listens again.
   */
  serverClosed(): void {
    if (this.isDraining || this.#pauses.current?.mode === 'refuse') return
    for (const t of this.#trackers.values()) if (!t.closed) return
    coordinator().unregister(this)
  }

  serverListening(): void {
    if (this.#phases.phase !== 'closed') coordinator().register(this)
  }

  count(event: 'completed' | 'aborted' | 'idleClosed'): void {
    this.#counts[event]++
  }

  forced(item: ForcedItem): void {
    this.#forced.push(item)
    publish(channels.forced, () => ({ controller: this.#public, item }))
  }

  // ── the drain ────────────────────────────────────────────────────────────

  async #drain(o: StartOptions): Promise<ShutdownReport> {
    const t0 = now()
    this.#startedAt = t0
    const timeout = drainTimeout(o.timeout, this.limits)
    this.#phases.to('announcing')
    this.#drainingController.abort(new DrainingError(o.signal ?? o.reason))
    this.#pauses.end()
    publish(channels.drainStart, () => ({ controller: this.#public, reason: o.reason, signal: o.signal, timeout }))
    this.options.logger?.info(
      `quiesce: draining ${this.mode.name} (${o.signal ?? o.reason}), deadline in ${timeout} ms${this.options.readinessDelay > 0 ? `, announcing for ${this.options.readinessDelay} ms` : ''}`,
    )
    for (const t of this.#trackers.values()) t.startDrain()

    const deadline = new Deadline(
      {
        abortGrace: this.options.abortGrace,
        logger: this.options.logger,
        abortInFlight: (reason) => {
          for (const t of this.#trackers.values()) t.abortInFlight(reason)
        },
        forceEnd: (reason) => this.#forceEnd(reason),
        progress: () => this.stats(),
        publicController: this.#public,
      },
      timeout,
    )
    this.#force = () => deadline.force()
    // announce phase (D4): listener open, markers on, readiness 503; then the listener closes
    const before = this.#beforeHooks.length > 0 ? runHooksTogether(this.#beforeHooks, timeout, deadline.forced) : Promise.resolve([])
    const announce = this.options.readinessDelay > 0 ? delay(Math.min(this.options.readinessDelay, timeout)) : Promise.resolve()
    await Promise.race([Promise.all([before, announce]), deadline.forced])
    if (this.#phases.to('closing')) this.#closeListeners()

    const closed = (): Promise<unknown> => Promise.all([...this.#trackers.values()].map((t) => t.whenClosed()))
    await Promise.race([closed(), deadline.forced])
    // after a force, wait for the servers' close too (destroyed sockets close within a tick), bounded
    if (deadline.timedOut) await Promise.race([closed(), delay(1000)])
    deadline.clear()
    const drainMs = now() - t0

    // cleanup hooks (D8): last registered first, each limited, all under the overall limit
    this.#phases.to('hooks')
    const hookRuns = await runHooksInOrder([...this.#onShutdownHooks].reverse(), this.limits.hooksTimeout)
    // before-shutdown hooks the deadline overtook are reported too: timed out at the deadline (D6, D8)
    const beforeRuns = await before
    const hooks = hookReports([...beforeRuns, ...hookRuns], this.options.logger, (item) => this.forced(item))

    this.#phases.to('closed')
    for (const t of this.#trackers.values()) t.detach()
    const report = buildReport({
      reason: o.reason,
      signal: o.signal,
      durationMs: now() - t0,
      drainMs,
      timedOut: deadline.timedOut,
      counts: this.#counts,
      forced: this.#forced,
      hooks,
    })
    if (report.ok) this.options.logger?.info(reportLine(report))
    else this.options.logger?.warn(reportLine(report))
    publish(channels.drainEnd, () => ({ controller: this.#public, report }))
    coordinator().unregister(this)
    return report
  }

  /** D6 at the deadline or a second signal: signals aborted, listeners closed (if still announcing), the rest destroyed. */
  #forceEnd(reason: () => Error): boolean {
    const announcing = this.#phases.phase === 'announcing'
    if (!this.#phases.to('forced')) return false
    for (const t of this.#trackers.values()) t.abortInFlight(reason)
    if (announcing) this.#closeListeners()
    for (const t of this.#trackers.values()) t.destroyAll()
    return true
  }

  /** Once per drain: the announce phase is over, or the deadline came first. */
  #closeListeners(): void {
    for (const t of this.#trackers.values()) this.#closeListenerOf(t)
    this.#listenerRelease.resolve()
  }

  #closeListenerOf(t: Tracker): void {
    t.closeListener(this.mode.listener === 'framework')
    publish(channels.listenerClose, () => ({ controller: this.#public, server: t.server }))
  }

  /**
   * The framework started closing (Fastify `preClose`): the drain starts (unless it did already)
   * and this resolves when the framework may close its listener, i.e. once the announce phase is
   * over (D4). The report comes from `shutdown()` / `start()`, which return the same promise.
   */
  frameworkClosing(): Promise<void> {
    void this.start({ reason: 'framework' })
    return this.#listenerRelease.promise
  }

  /**
   * The framework is about to destroy every connection itself (Fastify's `forceCloseConnections:
   * true`, right after `preClose`). What still runs is cut here instead, a moment earlier, so that
   * each request is named in the report as forced (D6) rather than vanishing as a client abort;
   * its signal aborts with the deadline reason, the drain's deadline having come early.
   */
  frameworkForcing(): void {
    const phase = this.#phases.phase
    if (phase !== 'announcing' && phase !== 'closing') return
    const elapsed = Math.round(now() - this.#startedAt)
    for (const t of this.#trackers.values()) t.abortInFlight(() => new ShutdownDeadlineError(elapsed))
    for (const t of this.#trackers.values()) t.destroyAll()
  }
}

function deferredReport(): { promise: Promise<ShutdownReport>; resolve: (r: ShutdownReport) => void; reject: (e: unknown) => void } {
  let resolve: (r: ShutdownReport) => void = () => {}
  let reject: (e: unknown) => void = () => {}
  const promise = new Promise<ShutdownReport>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
