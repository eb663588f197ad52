import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { channels, publish } from '../channels.js'
import { ClosedError, DrainingError, ResumeError, ShutdownDeadlineError } from '../errors.js'
import {
  resolveHookOptions,
  resolveOptions,
  resolvePauseOptions,
  resolveResumeOptions,
  resolveShutdownOptions,
  type ResolvedOptions,
} from '../options.js'
import type {
  AnyServer,
  Controller,
  ForcedItem,
  HookOptions,
  HookReport,
  PauseOptions,
  ResumeOptions,
  ShutdownHook,
  ShutdownOptions,
  ShutdownReason,
  ShutdownReport,
  State,
  Stats,
} from '../types.js'
import { runHooksInOrder, runHooksTogether, type HookEntry } from './hooks.js'
import { coordinator, EXIT_RESERVE, type Coordinated } from './process.js'
import { errorStack, progressLine, reportLine } from './report.js'
import { assertServer, closeListenerOnly, formatAddress } from './servers.js'
import { setCloseMarker } from './node.js'
import { Tracker } from './tracker.js'

const now = (): number => performance.now()

type AnyRequest = IncomingMessage | Http2ServerRequest
type AnyResponse = ServerResponse | Http2ServerResponse

export interface ControllerMode {
  /** Own each server's 'request' listeners (bare Node); adapters gate in their middleware instead. */
  readonly gate: boolean
  /** Who closes the listener when draining: quiesce, or the framework (Fastify's `close()`). */
  readonly listener: 'quiesce' | 'framework'
  /** Extra option names an adapter accepts and reads itself. */
  readonly extraOptions?: readonly string[]
  /** Shown in logs. */
  readonly name: string
}

interface Held {
  readonly req: AnyRequest
  readonly res: AnyResponse
  readonly until: number
  readonly resolve: (run: boolean) => void
}

interface PauseState {
  readonly mode: 'refuse' | 'reject' | 'hold'
  readonly maxWait: number
  /** refuse: where each server listened, to listen there again. */
  readonly addresses: Map<Tracker, AddressInfo | string>
}

interface StartOptions {
  readonly reason: ShutdownReason
  readonly signal?: string | undefined
  readonly timeout?: number | undefined
}

/**
 * The controller: one state machine (`running → paused → draining → closed`) over one or
 * more servers, the hooks, and the report. Every package's `graceful()` returns one of these
 * (Express and Koa wrap it in their middleware function, Fastify decorates it).
 */
export class GracefulController implements Controller, Coordinated {
  readonly options: ResolvedOptions
  readonly mode: ControllerMode
  #state: State = 'running'
  #trackers = new Map<AnyServer, Tracker>()
  #drainingController = new AbortController()
  #shutdown: Promise<ShutdownReport> | null = null
  #startedAt = 0
  #deadline = Infinity
  #pause: PauseState | null = null
  #pauseChange: Promise<void> = Promise.resolve()
  #held: Held[] = []
  #holdTimer: NodeJS.Timeout | null = null
  #onShutdownHooks: HookEntry[] = []
  #beforeHooks: HookEntry[] = []
  #forced: ForcedItem[] = []
  #counts = { completed: 0, aborted: 0, rejected: 0, idleClosed: 0 }
  #forceStarted = false
  #forceNow: (() => void) | null = null
  #listenerClosing = false
  /** Resolves when the listener closes: after the announce phase and the before-shutdown hooks (D4). */
  #listenerRelease: { promise: Promise<void>; resolve: () => void } = deferred()
  /** Effective limits after fitting the supervisor's budget (D19). */
  readonly limits: { readonly timeout: number; readonly hooksTimeout: number; readonly budget: number | null }

  constructor(options: unknown, mode: ControllerMode) {
    this.options = resolveOptions(options, mode.extraOptions)
    this.mode = mode
    setMaxListeners(0, this.#drainingController.signal)
    this.limits = fitBudget(this.options)
    coordinator().register(this)
  }

  // ── Controller ──────────────────────────────────────────────────────────

  get state(): State {
    return this.#state
  }

  get draining(): AbortSignal {
    return this.#drainingController.signal
  }

  get ready(): boolean {
    return this.#state === 'running' || this.#state === 'paused'
  }

  /** Draining has started (the announce phase included). */
  get isDraining(): boolean {
    return this.#state === 'draining' || this.#state === 'closed'
  }

  get servers(): AnyServer[] {
    return [...this.#trackers.keys()]
  }

  stats(): Stats {
    let connections = 0
    let idle = 0
    let upgraded = 0
    let inFlight = 0
    let sessions = 0
    for (const t of this.#trackers.values()) {
      const c = t.countConnections()
      connections += c.connections
      idle += c.idle
      upgraded += c.upgraded
      inFlight += t.inflightCount + t.streams.size
      sessions += t.sessions.size
    }
    return { state: this.#state, connections, idleConnections: idle, requestsInFlight: inFlight, upgradedSockets: upgraded, http2Sessions: sessions }
  }

  /**
   * Tracks one more server with this controller (Express/Koa before the first request, D17; a
   * second listener). A server another controller drains is refused with a TypeError (D20).
   */
  attach(server: unknown): this {
    assertServer(server)
    if (this.#trackers.has(server)) return this
    if (this.#state === 'closed') throw new ClosedError('attach()')
    const tracker = new Tracker(server, this, { gate: this.mode.gate })
    if (server.listening) coordinator().register(this)
    this.#trackers.set(server, tracker)
    if (this.isDraining) {
      tracker.startDrain()
      if (this.#listenerClosing) this.#closeListenerOf(tracker)
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

  /** Starts the drain (idempotent: every call returns the first call's promise). */
  start(options: StartOptions): Promise<ShutdownReport> {
    this.#shutdown ??= this.#drain(options)
    return this.#shutdown
  }

  /** A second signal: the deadline now (D9). */
  force(): void {
    if (this.#shutdown === null) {
      void this.start({ reason: 'signal', timeout: 0 })
      return
    }
    this.#forceNow?.()
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
    return this.#serialise(async () => {
      if (this.isDraining) throw new ClosedError('pause()')
      if (this.#pause !== null) {
        if (this.#pause.mode === o.mode && this.#pause.maxWait === o.maxWait) return
        await this.#resumeNow({ retries: 10 })
      }
      const addresses = new Map<Tracker, AddressInfo | string>()
      if (o.mode === 'refuse') {
        for (const t of this.#trackers.values()) {
          const address = t.server.address()
          if (address === null || !t.server.listening) continue
          addresses.set(t, address)
          closeListenerOnly(t.server)
        }
      }
      this.#pause = { mode: o.mode, maxWait: o.maxWait, addresses }
      this.#state = 'paused'
    })
  }

  resume(options?: ResumeOptions): Promise<void> {
    const o = resolveResumeOptions(options)
    return this.#serialise(async () => {
      if (this.isDraining) throw new ClosedError('resume()')
      await this.#resumeNow(o)
    })
  }

  #serialise(fn: () => Promise<void>): Promise<void> {
    const next = this.#pauseChange.then(fn, fn)
    this.#pauseChange = next.catch(() => {})
    return next
  }

  async #resumeNow(o: Required<ResumeOptions>): Promise<void> {
    const pause = this.#pause
    if (pause === null) return
    for (const [tracker, address] of pause.addresses) {
      await listenAgain(tracker.server, address, o.retries)
      pause.addresses.delete(tracker)
    }
    this.#pause = null
    this.#state = 'running'
    this.#releaseHeld(true)
  }

  // ── the gate ─────────────────────────────────────────────────────────────

  /** Decides whether a request reaches its handler: true, false (quiesce answered it), or later (hold). */
  admit(req: AnyRequest, res: AnyResponse): boolean | Promise<boolean> {
    if (Tracker.refused(res)) return false
    const state = this.#state
    if (state === 'running') return true
    if (state === 'paused') {
      const pause = this.#pause as PauseState
      if (pause.mode === 'refuse') return true
      if (pause.mode === 'reject') {
        this.reject503(res)
        return false
      }
      return new Promise<boolean>((resolve) => {
        this.#held.push({ req, res, until: now() + pause.maxWait, resolve })
        this.#armHoldTimer()
      })
    }
    if (this.options.duringDrain === 'reject') {
      this.#counts.rejected++
      this.reject503(res)
      return false
    }
    return true
  }

  /** 503 with Retry-After; on HTTP/1 with `Connection: close` (our marker, so quiesce closes the socket gracefully after it). */
  reject503(res: AnyResponse): void {
    if (res.headersSent || res.writableEnded) {
      if (!res.writableEnded) res.end()
      return
    }
    res.statusCode = 503
    res.setHeader('Retry-After', String(Math.ceil(this.options.retryAfter)))
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    if ('maxRequestsOnConnectionReached' in res) setCloseMarker(res, true)
    res.end('Service Unavailable\n')
  }

  #armHoldTimer(): void {
    if (this.#holdTimer !== null || this.#held.length === 0) return
    const first = this.#held[0] as Held
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = null
      const t = now()
      while (this.#held.length > 0 && (this.#held[0] as Held).until <= t) {
        const h = this.#held.shift() as Held
        if (!h.res.writableEnded && !h.res.destroyed) this.reject503(h.res)
        h.resolve(false)
      }
      this.#armHoldTimer()
    }, Math.max(0, Math.ceil(first.until - now())))
  }

  #releaseHeld(run: boolean): void {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer)
    this.#holdTimer = null
    const held = this.#held
    this.#held = []
    for (const h of held) h.resolve(run && !h.res.destroyed && !h.res.writableEnded)
  }

  handlerFailed(error: unknown, req: AnyRequest, res: AnyResponse): void {
    this.options.logger?.error(`quiesce: ${req.method ?? ''} ${req.url ?? ''} failed; answered 500 — ${errorStack(error)}`)
    if (!res.headersSent && !res.writableEnded) {
      res.statusCode = 500
      res.setHeader('Content-Type', 'text/plain; charset=utf-8')
      res.end('Internal Server Error\n')
    } else if (!res.writableEnded) {
      // headers are out: the only honest answer left is to cut this one response
      res.destroy()
    }
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
    if (this.isDraining || this.#pause?.mode === 'refuse') return
    for (const t of this.#trackers.values()) if (!t.closed) return
    coordinator().unregister(this)
  }

  serverListening(): void {
    if (this.#state !== 'closed') coordinator().register(this)
  }

  count(event: 'completed' | 'aborted' | 'idleClosed'): void {
    this.#counts[event]++
  }

  forced(item: ForcedItem): void {
    this.#forced.push(item)
    publish(channels.forced, () => ({ controller: this, item }))
  }

  // ── the drain ────────────────────────────────────────────────────────────

  async #drain(o: StartOptions): Promise<ShutdownReport> {
    const t0 = now()
    this.#startedAt = t0
    const timeout = drainTimeout(o.timeout, this.limits.timeout)
    this.#deadline = t0 + timeout
    this.#state = 'draining'
    this.#drainingController.abort(new DrainingError(o.signal ?? o.reason))
    this.#releaseHeld(true)
    if (this.#pause !== null) this.#pause = null
    const log = this.options.logger
    publish(channels.drainStart, () => ({ controller: this, reason: o.reason, signal: o.signal, timeout }))
    log?.info(`quiesce: draining ${this.mode.name} (${o.signal ?? o.reason}), deadline in ${timeout} ms${this.options.readinessDelay > 0 ? `, announcing for ${this.options.readinessDelay} ms` : ''}`)

    for (const t of this.#trackers.values()) t.startDrain()

    // deadline (D6): `timeout` is the hard bound. The request signals abort `abortGrace` before
    // it; at it, whatever is left is destroyed. A second signal does both at once.
    let timedOut = false
    let forcedResolve: () => void = () => {}
    const forcedDone = new Promise<void>((resolve) => { forcedResolve = resolve })
    const reason = (): Error => new ShutdownDeadlineError(timeout)
    const abortSignals = (): void => {
      for (const t of this.#trackers.values()) t.abortInFlight(reason)
    }
    const force = (): void => {
      if (this.#forceStarted) return
      this.#forceStarted = true
      timedOut = true
      abortSignals()
      this.#closeListeners()
      for (const t of this.#trackers.values()) t.destroyAll()
      forcedResolve()
    }
    this.#forceNow = force
    const abortTimer = setTimeout(abortSignals, Math.max(0, timeout - this.options.abortGrace))
    abortTimer.unref()
    const deadlineTimer = setTimeout(force, timeout)
    deadlineTimer.unref()
    const progressTimer = setInterval(() => {
      const s = this.stats()
      const remaining = this.#deadline - now()
      log?.info(progressLine(s.requestsInFlight, s.connections, remaining))
      publish(channels.drainProgress, () => ({ controller: this, requestsInFlight: s.requestsInFlight, connections: s.connections, remainingMs: Math.round(remaining) }))
    }, 1000)
    progressTimer.unref()

    // announce phase (D4): listener open, markers on, readiness 503; then the listener closes
    const before = this.#beforeHooks.length > 0 ? runHooksTogether(this.#beforeHooks, Math.max(0, this.#deadline - now())) : Promise.resolve([])
    const announce = this.options.readinessDelay > 0 ? delay(Math.min(this.options.readinessDelay, timeout)) : Promise.resolve()
    const beforeRuns = await Promise.race([Promise.all([before, announce]).then(([runs]) => runs), forcedDone.then(() => null)])
    this.#closeListeners()

    await Promise.race([Promise.all([...this.#trackers.values()].map((t) => t.whenClosed())), forcedDone])
    // after a force, wait for the servers' close too (destroyed sockets close within a tick), bounded
    if (timedOut) await Promise.race([Promise.all([...this.#trackers.values()].map((t) => t.whenClosed())), delay(1000)])
    clearTimeout(abortTimer)
    clearTimeout(deadlineTimer)
    clearInterval(progressTimer)
    const drainMs = now() - t0

    // cleanup hooks (D8): last registered first, each limited, all under the overall limit
    const hookRuns = await runHooksInOrder([...this.#onShutdownHooks].reverse(), this.limits.hooksTimeout)
    const hooks: HookReport[] = []
    for (const run of [...(beforeRuns ?? []), ...hookRuns]) {
      hooks.push(run.report)
      if (run.error !== null) {
        log?.error(`quiesce: ${run.error.message}${run.error.cause instanceof Error ? ` — ${errorStack(run.error.cause)}` : ''}`)
        this.forced({ kind: 'hook', name: run.report.name, timedOut: run.report.timedOut })
      }
    }

    this.#state = 'closed'
    for (const t of this.#trackers.values()) t.detach()
    const forced = this.#forced
    const socketsForced = forced.filter((f) => f.kind === 'socket' || f.kind === 'session').length
    const report: ShutdownReport = {
      reason: o.reason,
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
      // idle sockets closed at the deadline are not forced (D1): reaching it with nothing else left is ok
      ok: forced.length === 0 && hooks.every((h) => h.ok),
      durationMs: Math.round(now() - t0),
      drainMs: Math.round(drainMs),
      timedOut,
      requestsCompleted: this.#counts.completed,
      requestsAborted: this.#counts.aborted,
      requestsRejected: this.#counts.rejected,
      socketsClosedIdle: this.#counts.idleClosed,
      socketsForced,
      forced,
      hooks,
    }
    if (report.ok) log?.info(reportLine(report))
    else log?.warn(reportLine(report))
    publish(channels.drainEnd, () => ({ controller: this, report }))
    coordinator().unregister(this)
    return report
  }

  #closeListeners(): void {
    if (this.#listenerClosing) return
    this.#listenerClosing = true
    for (const t of this.#trackers.values()) this.#closeListenerOf(t)
    this.#listenerRelease.resolve()
  }

  #closeListenerOf(t: Tracker): void {
    const external = this.mode.listener === 'framework'
    if (external) t.holdNodeIdleClose()
    t.closeListener(external)
    publish(channels.listenerClose, () => ({ controller: this, server: t.server }))
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
    if (!this.isDraining || this.#forceStarted) return
    const elapsed = Math.round(now() - this.#startedAt)
    for (const t of this.#trackers.values()) t.abortInFlight(() => new ShutdownDeadlineError(elapsed))
    for (const t of this.#trackers.values()) t.destroyAll()
  }
}

/** The one place a drain's deadline is computed: a `shutdown({ timeout })` may shorten it, never extend it past the budget (D19). */
export function drainTimeout(requested: number | undefined, limit: number): number {
  return Math.min(requested ?? limit, limit)
}

function addHook(list: HookEntry[], hook: ShutdownHook, options: HookOptions | undefined): () => void {
  const o = resolveHookOptions(hook, options, `hook ${list.length + 1}`)
  const entry: HookEntry = { fn: hook, name: o.name, timeout: o.timeout }
  list.push(entry)
  return () => {
    const i = list.indexOf(entry)
    if (i !== -1) list.splice(i, 1)
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/**
 * D19: the supervisor's budget, when the process can know it (an explicit `budget`, or PM2's
 * `kill_timeout`, 1600 ms unless set). When `timeout + hooksTimeout` does not fit, both are scaled
 * down in proportion and a warning names the numbers.
 */
export function fitBudget(o: ResolvedOptions, env: NodeJS.ProcessEnv = process.env): { timeout: number; hooksTimeout: number; budget: number | null } {
  let budget = o.budget
  let source = 'the budget option'
  if (budget === null && env.pm_id !== undefined) {
    const k = Number(env.kill_timeout)
    budget = Number.isFinite(k) && k > 0 ? k : 1600
    source = env.kill_timeout ? `PM2's kill_timeout` : `PM2's default kill_timeout`
  }
  if (budget === null) return { timeout: o.timeout, hooksTimeout: o.hooksTimeout, budget: null }
  const available = Math.max(0, budget - EXIT_RESERVE)
  const wanted = o.timeout + o.hooksTimeout
  if (wanted <= available) return { timeout: o.timeout, hooksTimeout: o.hooksTimeout, budget }
  const scale = wanted === 0 ? 0 : available / wanted
  const timeout = Math.floor(o.timeout * scale)
  const hooksTimeout = Math.floor(o.hooksTimeout * scale)
  o.logger?.warn(
    `quiesce: timeout (${o.timeout} ms) + hooksTimeout (${o.hooksTimeout} ms) = ${wanted} ms exceeds ${source} of ${budget} ms; ` +
      `draining with timeout ${timeout} ms and hooksTimeout ${hooksTimeout} ms so the process exits before it is killed`,
  )
  return { timeout, hooksTimeout, budget }
}

/** `resume()`: listen on the same address again, retrying EADDRINUSE with back-off (D13). */
async function listenAgain(server: AnyServer, address: AddressInfo | string, retries: number): Promise<void> {
  const args = typeof address === 'string' ? { path: address } : { port: address.port, host: address.address }
  let wait = 25
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          server.removeListener('listening', onListening)
          reject(err)
        }
        const onListening = (): void => {
          server.removeListener('error', onError)
          resolve()
        }
        server.once('error', onError)
        server.once('listening', onListening)
        server.listen(args)
      })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= retries) {
        throw new ResumeError(formatAddress(address), err)
      }
      await delay(wait)
      wait = Math.min(wait * 2, 1000)
    }
  }
}

export type { AnyRequest, AnyResponse }
