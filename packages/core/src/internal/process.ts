import cluster from 'node:cluster'
import { isMainThread } from 'node:worker_threads'
import type { Logger, ShutdownReason, ShutdownReport } from '../types.js'
import { errorStack } from './report.js'

/**
 * One coordinator per process, shared by every copy of quiesce (ESM and CommonJS of one version)
 * through a `Symbol.for` key on `globalThis`. Controllers register with it while they have a
 * server to drain. It installs the process handlers once, however many controllers exist (D9,
 * D11), and removes them when the last controller is gone.
 *
 * The key carries the protocol version: the coordinator of one copy calls into controllers of
 * another only through `Coordinated` below. Change that interface, change the version.
 */
const kCoordinator = Symbol.for('quiesce.coordinator.v2')

/** ms kept back from the supervisor's budget for flushing logs and exiting (D9, D19). */
export const EXIT_RESERVE = 100

/** What the coordinator needs of a controller (protocol v2). */
export interface Coordinated {
  readonly options: {
    readonly signals: readonly string[]
    readonly fatalErrors: boolean
    readonly fatalTimeout: number
    readonly exit: boolean
    readonly logger: Logger | null
  }
  /** The drain's deadline and the hooks' limit after fitting the supervisor's budget (D19). */
  readonly limits: { readonly timeout: number; readonly hooksTimeout: number; readonly budget: number | null }
  /** Starts the drain (idempotent). */
  start(options: { reason: ShutdownReason; signal?: string; timeout?: number }): Promise<ShutdownReport>
  /** A second signal: the deadline now. */
  force(): void
}

/**
 * What `@quiesce/core/cluster`'s primary sends a worker over IPC: drain it as a signal would (the
 * worker exits when done), or force that drain now (a second signal, D9).
 */
export type ClusterCommand = { readonly quiesce: 'drain' } | { readonly quiesce: 'force' }

function isClusterCommand(message: unknown): message is ClusterCommand {
  const command = (message as { quiesce?: unknown } | null)?.quiesce
  return typeof message === 'object' && (command === 'drain' || command === 'force')
}

type Trigger = { kind: 'signal'; signal: string } | { kind: 'fatal'; error: unknown; origin: string }
type Listener = (...args: unknown[]) => void

export class Coordinator {
  readonly controllers = new Set<Coordinated>()
  #signalHandlers = new Map<string, () => void>()
  #fatalInstalled = false
  #messagesInstalled = false
  #stopping: Trigger | null = null
  /** The loggers of the controllers draining: the ones flushed before the exit (D9). */
  #stoppingLoggers: Logger[] = []
  /** Other code's handlers of the signal that started the drain, as they were then (D20). */
  #foreignAtStart: Listener[] = []
  #exitTimer: NodeJS.Timeout | null = null
  /** A fatal error happened while a signal's drain ran: it still ends in exit 1 (D11). */
  #fatalDuringDrain = false
  /**
   * The drain came from a cluster primary's message: the worker's own copy of the same signal
   * (Ctrl+C, or systemd's SIGTERM to the whole process group) may follow it, and is not a second one.
   */
  #primaryStarted = false
  /** Fatal errors seen (D11): only the first few are logged. */
  #fatalLogged = 0

  register(controller: Coordinated): void {
    if (this.controllers.has(controller)) return
    this.controllers.add(controller)
    this.#sync()
  }

  unregister(controller: Coordinated): void {
    if (!this.controllers.delete(controller)) return
    if (this.#stopping === null) this.#sync()
  }

  /** Keeps the process handlers matching what the registered controllers ask for. */
  #sync(): void {
    const wanted = new Set<string>()
    let fatal = false
    for (const c of this.controllers) {
      for (const s of c.options.signals) wanted.add(s)
      if (c.options.fatalErrors) fatal = true
    }
    // signals are delivered to the main thread only
    if (!isMainThread) wanted.clear()
    for (const [signal, handler] of this.#signalHandlers) {
      if (!wanted.has(signal)) {
        process.removeListener(signal, handler)
        this.#signalHandlers.delete(signal)
      }
    }
    for (const signal of wanted) {
      if (this.#signalHandlers.has(signal)) continue
      const handler = (): void => this.#onSignal(signal)
      this.#signalHandlers.set(signal, handler)
      process.on(signal as NodeJS.Signals, handler)
    }
    if (fatal && !this.#fatalInstalled) {
      this.#fatalInstalled = true
      process.on('uncaughtException', this.#onUncaught)
      process.on('unhandledRejection', this.#onUnhandled)
    } else if (!fatal && this.#fatalInstalled) {
      this.#fatalInstalled = false
      process.removeListener('uncaughtException', this.#onUncaught)
      process.removeListener('unhandledRejection', this.#onUnhandled)
    }
    // PM2 (D19): its `shutdown` message counts as a signal. A node:cluster primary's drain message
    // is heard whatever the `signals` option: it is how rolling restarts reach a worker (D21).
    const ipc = typeof process.send === 'function'
    const pm2 = ipc && wanted.size > 0 && process.env.pm_id !== undefined
    const clusterWorker = ipc && cluster.isWorker && this.controllers.size > 0
    if ((pm2 || clusterWorker) && !this.#messagesInstalled) {
      this.#messagesInstalled = true
      process.on('message', this.#onMessage)
      // a 'message' listener refs the IPC channel; the server, not quiesce, should keep the process alive.
      // Not in a cluster worker (PM2's cluster mode included): its listen() waits for the primary's answer
      // on this channel with nothing else holding the event loop, so an unref'd channel let new instances
      // exit 0 before listening (seen under `pm2 reload`: the reload then waited for listen_timeout)
      if (pm2 && !cluster.isWorker) (process as { channel?: { unref?: () => void } }).channel?.unref?.()
    } else if (!pm2 && !clusterWorker && this.#messagesInstalled) {
      this.#messagesInstalled = false
      process.removeListener('message', this.#onMessage)
    }
  }

  #onMessage = (message: unknown): void => {
    if (message === 'shutdown' && process.env.pm_id !== undefined) this.#onSignal('shutdown')
    else if (isClusterCommand(message)) {
      // `drain` is idempotent: Ctrl+C in a terminal signals the primary and its workers alike, so a
      // worker may be draining already when its primary's message arrives; `force` is a second signal
      if (this.#stopping === null) {
        this.#primaryStarted = true
        this.#onSignal('shutdown')
      }
      if (message.quiesce === 'force') this.#force('shutdown')
    }
  }

  #onSignal(signal: string): void {
    if (this.#stopping !== null) {
      if (this.#primaryStarted && signal !== 'shutdown') {
        // one signal, delivered to the primary and to this worker: the primary forces on a second (D9, D21)
        this.#primaryStarted = false
        this.#log((l) => l.info(`quiesce: ${signal} after the cluster primary's drain message (the same signal, sent to the process group); the drain goes on`))
        return
      }
      if (this.#resentByOtherCode(signal)) {
        this.#log((l) => l.info(`quiesce: ${signal} again, re-sent by the handler that took the first one; the drain goes on`))
        return
      }
      this.#force(signal)
      return
    }
    const involved = [...this.controllers].filter((c) => signal === 'shutdown' || c.options.signals.includes(signal))
    if (involved.length === 0) return
    this.#foreignAtStart = signal === 'shutdown' ? [] : this.#foreignHandlers(signal)
    this.#stopping = { kind: 'signal', signal }
    void this.#stopAll(involved, { kind: 'signal', signal })
  }

  /** A second signal forces at once (D9). */
  #force(signal: string): void {
    this.#log((l) => l.warn(`quiesce: ${signal} again — forcing the shutdown now`))
    for (const c of this.controllers) c.force()
  }

  /**
   * D20: NestJS's `enableShutdownHooks()`, Apollo's `stopOnTerminationSignals` and others close
   * their part on the first signal, remove their own handler and send the same signal to their
   * own process, expecting it to end. quiesce's handler is still there, so that signal arrives
   * here: when every other handler present at the first signal has removed itself since, it is
   * that re-send — not a person's second Ctrl+C — and the drain goes on to its own exit.
   */
  #resentByOtherCode(signal: string): boolean {
    if (this.#stopping?.kind !== 'signal' || this.#stopping.signal !== signal || this.#foreignAtStart.length === 0) return false
    const now = new Set(this.#foreignHandlers(signal))
    return this.#foreignAtStart.every((l) => !now.has(l))
  }

  #foreignHandlers(signal: string): Listener[] {
    const ours = this.#signalHandlers.get(signal)
    return (process.listeners(signal as NodeJS.Signals) as Listener[]).filter((l) => l !== ours)
  }

  #onUncaught = (error: unknown, origin: string): void => {
    this.#onFatal(error, origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception')
  }

  #onUnhandled = (reason: unknown): void => {
    this.#onFatal(reason, 'unhandled rejection')
  }

  /** D11: log it, drain the others under a short deadline, run the hooks, exit 1. */
  #onFatal(error: unknown, origin: string): void {
    // Logged a few times per process at most: when the log's own pipe is gone (the supervisor's
    // reader closed), each line is one more EPIPE, uncaught, here again — a loop that never yields
    this.#fatalLogged++
    if (this.#fatalLogged <= FATAL_LOG_LIMIT) this.#log((l) => l.error(`quiesce: ${origin} — draining and exiting 1: ${errorStack(error)}`), true)
    else if (this.#fatalLogged === FATAL_LOG_LIMIT + 1) this.#log((l) => l.error('quiesce: more fatal errors; not logged'), true)
    if (this.#stopping !== null) {
      this.#fatalDuringDrain = true
      if (this.#exitTimer === null) this.#armFinalLimit([...this.controllers], { kind: 'fatal', error, origin })
      return
    }
    const involved = [...this.controllers].filter((c) => c.options.fatalErrors)
    if (involved.length === 0) return
    this.#stopping = { kind: 'fatal', error, origin }
    void this.#stopAll(involved, this.#stopping)
  }

  async #stopAll(controllers: Coordinated[], trigger: Trigger): Promise<void> {
    // a fatal error always ends the process (D11): a process must never keep running, closed
    const exit = trigger.kind === 'fatal' || controllers.every((c) => c.options.exit)
    this.#stoppingLoggers = loggersOf(controllers)
    if (exit) this.#armFinalLimit(controllers, trigger)
    const reports = await Promise.all(
      controllers.map((c) =>
        trigger.kind === 'signal' ? c.start({ reason: 'signal', signal: trigger.signal }) : c.start({ reason: 'fatal', timeout: c.options.fatalTimeout }),
      ),
    )
    if (!exit && !this.#fatalDuringDrain) {
      this.#stopping = null
      this.#foreignAtStart = []
      this.#primaryStarted = false
      this.#sync()
      return
    }
    const code = trigger.kind === 'fatal' || this.#fatalDuringDrain || reports.some((r: ShutdownReport) => !r.ok) ? 1 : 0
    await flushAndExit(code, this.#stoppingLoggers, flushLimit(controllers))
  }

  /** Whatever happens (a hung hook past its limit, a handle that never closes), the process goes. */
  #armFinalLimit(controllers: Coordinated[], trigger: Trigger): void {
    let limit = 0
    for (const c of controllers) {
      const timeout = trigger.kind === 'fatal' ? Math.min(c.options.fatalTimeout, c.limits.timeout) : c.limits.timeout
      const total = timeout + c.limits.hooksTimeout
      limit = Math.max(limit, c.limits.budget !== null ? Math.min(total, c.limits.budget - EXIT_RESERVE) : total + 1000)
    }
    this.#exitTimer = setTimeout(
      () => {
        this.#log((l) => l.error(`quiesce: shutdown did not finish within its final limit of ${limit} ms; exiting 1`), true)
        void flushAndExit(1, this.#stoppingLoggers, flushLimit(controllers))
      },
      Math.min(limit, 2 ** 31 - 1),
    )
    this.#exitTimer.unref()
  }

  #log(fn: (l: Logger) => void, fallbackToConsole = false): void {
    const loggers = this.#stopping !== null ? this.#stoppingLoggers : loggersOf(this.controllers)
    const targets = loggers.length === 0 && fallbackToConsole ? [console] : loggers
    for (const l of targets) {
      try {
        fn(l)
      } catch {
        /* a broken logger must not stop the shutdown */
      }
    }
  }
}

function loggersOf(controllers: Iterable<Coordinated>): Logger[] {
  const loggers = new Set<Logger>()
  for (const c of controllers) if (c.options.logger) loggers.add(c.options.logger)
  return [...loggers]
}

/** Fatal errors logged per process at most; the rest are counted, not logged (see `#onFatal`). */
const FATAL_LOG_LIMIT = 5

/** How long the last flush may take when no supervisor's budget is known (a pino transport's worker under load). */
export const FLUSH_LIMIT = 1000

/**
 * D9: the last lines reach the pipe before the exit — each logger's `flush(cb)` (pino's) awaited,
 * then stdout and stderr — each bounded by `limit` ms (EXIT_RESERVE, what the budget kept for it,
 * under a supervisor), whatever keeps the event loop alive.
 */
export async function flushAndExit(code: number, loggers: readonly Logger[], limit: number = EXIT_RESERVE): Promise<void> {
  const flushes: Array<Promise<void>> = []
  for (const l of loggers) {
    if (typeof l.flush !== 'function') continue
    flushes.push(
      new Promise((resolve) => {
        try {
          l.flush?.(() => resolve())
        } catch {
          resolve()
        }
      }),
    )
  }
  await Promise.race([Promise.all(flushes), new Promise((resolve) => setTimeout(resolve, limit).unref())])
  const streams = [process.stdout, process.stderr].map(
    (stream) =>
      new Promise<void>((resolve) => {
        if (!stream.writable) return resolve()
        stream.write('', () => resolve())
      }),
  )
  await Promise.race([Promise.all(streams), new Promise((resolve) => setTimeout(resolve, limit).unref())])
  process.exit(code)
}

/** Under a supervisor's budget the flush has what the budget kept for it (D19); without one, longer. */
function flushLimit(controllers: readonly Coordinated[]): number {
  return controllers.some((c) => c.limits.budget !== null) ? EXIT_RESERVE : FLUSH_LIMIT
}

export function coordinator(): Coordinator {
  const g = globalThis as { [kCoordinator]?: Coordinator }
  g[kCoordinator] ??= new Coordinator()
  return g[kCoordinator]
}
