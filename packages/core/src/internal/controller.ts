import { setMaxListeners } from 'node:events'
import { channels, publish } from '../channels.js'
import { ClosedError } from '../errors.js'
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
  ShutdownReport,
  State,
  Stats,
} from '../types.js'
import { fitBudget, type Limits } from './budget.js'
import { addHook, type HookEntry } from './hooks.js'
import { answer500, answer503 } from './answers.js'
import { Drain, type StartOptions } from './drain.js'
import { PauseSwitch } from './pause.js'
import { PhaseMachine } from './phases.js'
import { coordinator, type Coordinated } from './process.js'
import { errorStack, type DrainCounts } from './report.js'
import { assertServer } from './servers.js'
import type { AnyRequest, AnyResponse, TrackerHost } from './site.js'
import { Tracker } from './tracker.js'
import { Trackers } from './trackers.js'

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

/**
 * The controller: the drain's state machine (`phases.ts`) over one or more servers (`Trackers`),
 * the hooks, the pause and the counts; the drain itself, from announce to report, is `Drain`.
 * Every package's public controller delegates to one of these (`facade.ts`); the process-wide
 * coordinator drives it through `Coordinated`, its servers' trackers through `TrackerHost`.
 */
export class GracefulController implements Controller, Coordinated, TrackerHost {
  readonly options: ResolvedOptions
  readonly mode: ControllerMode
  /** Effective limits after fitting the supervisor's budget (D19). */
  readonly limits: Limits
  readonly #phases = new PhaseMachine()
  readonly #trackers: Trackers
  readonly #drainingController = new AbortController()
  #shutdown: Promise<ShutdownReport> | null = null
  readonly #pauses: PauseSwitch
  readonly #onShutdownHooks: HookEntry[] = []
  readonly #beforeHooks: HookEntry[] = []
  readonly #forced: ForcedItem[] = []
  readonly #counts: DrainCounts = { completed: 0, aborted: 0, rejected: 0, idleClosed: 0 }
  readonly #drain: Drain
  /** What the user holds (the facade): the `controller` of every `quiesce:*` message. */
  #public: object = this

  constructor(options: unknown, mode: ControllerMode) {
    this.options = resolveOptions(options, mode.extraOptions)
    this.mode = mode
    setMaxListeners(0, this.#drainingController.signal)
    this.limits = fitBudget(this.options)
    this.#trackers = new Trackers(mode.listener === 'framework', (server) => publish(channels.listenerClose, () => ({ controller: this.#public, server })))
    const self = this
    this.#pauses = new PauseSwitch({
      get servers() {
        return self.#trackers.servers()
      },
      get draining() {
        return self.isDraining
      },
      reject503: (res) => this.reject503(res),
      changed: (paused) => {
        this.#phases.to(paused ? 'paused' : 'running')
      },
    })
    this.#drain = new Drain({
      options: this.options,
      limits: this.limits,
      name: mode.name,
      phases: this.#phases,
      trackers: this.#trackers,
      beforeHooks: this.#beforeHooks,
      onShutdownHooks: this.#onShutdownHooks,
      counts: this.#counts,
      forcedItems: this.#forced,
      get publicController() {
        return self.#public
      },
      stats: () => this.stats(),
      forced: (item) => this.forced(item),
      announced: (reason) => {
        this.#drainingController.abort(reason)
        this.#pauses.end()
      },
      ended: () => coordinator().unregister(this),
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
    return [...this.#trackers.servers()]
  }

  stats(): Stats {
    return { state: this.state, ...this.#trackers.stats() }
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
    this.#trackers.add(tracker)
    this.#pauses.current?.adopt(server)
    if (this.isDraining) {
      tracker.startDrain()
      if (this.#phases.phase !== 'announcing') this.#trackers.closeListener(tracker)
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
    this.#drain.run(options).then(report.resolve, report.reject)
    return this.#shutdown
  }

  /** A second signal: the deadline now (D9). */
  force(): void {
    if (this.#shutdown === null) void this.start({ reason: 'signal', timeout: 0 })
    else this.#drain.force()
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
    if (this.#trackers.allClosed()) coordinator().unregister(this)
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

  // ── the framework's own close (Fastify) ─────────────────────────────────

  /**
   * The framework started closing (Fastify `preClose`): the drain starts (unless it did already)
   * and this resolves when the framework may close its listener, i.e. once the announce phase is
   * over (D4). The report comes from `shutdown()` / `start()`, which return the same promise.
   */
  frameworkClosing(): Promise<void> {
    void this.start({ reason: 'framework' })
    return this.#trackers.listenersClosed
  }

  /** The framework is about to destroy every connection itself (Fastify): see `Drain.frameworkForcing`. */
  frameworkForcing(): void {
    this.#drain.frameworkForcing()
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
