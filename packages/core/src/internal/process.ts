import cluster from 'node:cluster'
import { isMainThread } from 'node:worker_threads'
import type { Logger, ShutdownReport } from '../types.js'
import type { GracefulController } from './controller.js'
import { errorStack } from './report.js'

/**
 * One coordinator per process, shared by every copy of quiesce (ESM, CommonJS, several versions)
 * through a `Symbol.for` key on `globalThis`. Every controller registers with it. It installs the
 * process handlers once, however many controllers exist (D9, D11), and removes them when the last
 * controller is done.
 */
const kCoordinator = Symbol.for('quiesce.coordinator.v1')

/** ms kept back from the supervisor's budget for flushing logs and exiting (D9, D19). */
export const EXIT_RESERVE = 100

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

export class Coordinator {
  readonly controllers = new Set<GracefulController>()
  #signalHandlers = new Map<string, () => void>()
  #fatalInstalled = false
  #messagesInstalled = false
  #stopping: Trigger | null = null
  #exitTimer: NodeJS.Timeout | null = null

  register(controller: GracefulController): void {
    this.controllers.add(controller)
    this.#sync()
  }

  unregister(controller: GracefulController): void {
    this.controllers.delete(controller)
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
    // PM2 (D19): its `shutdown` message counts as a signal; so does a node:cluster primary's drain message
    const ipc = typeof process.send === 'function' && wanted.size > 0
    const pm2 = ipc && process.env.pm_id !== undefined
    const clusterWorker = ipc && cluster.isWorker
    if ((pm2 || clusterWorker) && !this.#messagesInstalled) {
      this.#messagesInstalled = true
      process.on('message', this.#onMessage)
      // a 'message' listener refs the IPC channel; the server, not quiesce, should keep the process alive.
      // Not in a cluster worker (PM2's cluster mode included): its listen() waits for the primary's answer
      // on this channel with nothing else holding the event loop, so an unref'd channel let new instances
      // exit 0 before listening (seen under `pm2 reload`: the reload then waited for listen_timeout)
      if (pm2 && !clusterWorker) (process as { channel?: { unref?: () => void } }).channel?.unref?.()
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
      if (this.#stopping === null) this.#onSignal('shutdown')
      if (message.quiesce === 'force') this.#onSignal('shutdown')
    }
  }

  #onSignal(signal: string): void {
    if (this.#stopping !== null) {
      // a second signal forces at once (D9)
      this.#log((l) => l.warn(`quiesce: ${signal} again — forcing the shutdown now`))
      for (const c of this.controllers) c.force()
      return
    }
    const involved = [...this.controllers].filter((c) => signal === 'shutdown' || c.options.signals.includes(signal))
    if (involved.length === 0) return
    this.#stopping = { kind: 'signal', signal }
    void this.#stopAll(involved, { kind: 'signal', signal })
  }

  #onUncaught = (error: unknown, origin: string): void => {
    this.#onFatal(error, origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception')
  }

  #onUnhandled = (reason: unknown): void => {
    this.#onFatal(reason, 'unhandled rejection')
  }

  /** D11: log it, drain the others under a short deadline, run the hooks, exit 1. */
  #onFatal(error: unknown, origin: string): void {
    this.#log((l) => l.error(`quiesce: ${origin} — draining and exiting 1: ${errorStack(error)}`), true)
    if (this.#stopping !== null) return
    const involved = [...this.controllers].filter((c) => c.options.fatalErrors)
    if (involved.length === 0) return
    this.#stopping = { kind: 'fatal', error, origin }
    void this.#stopAll(involved, this.#stopping)
  }

  async #stopAll(controllers: GracefulController[], trigger: Trigger): Promise<void> {
    const exit = controllers.every((c) => c.options.exit)
    if (exit) this.#armFinalLimit(controllers, trigger)
    const reports = await Promise.all(
      controllers.map((c) =>
        trigger.kind === 'signal'
          ? c.start({ reason: 'signal', signal: trigger.signal })
          : c.start({ reason: 'fatal', timeout: c.options.fatalTimeout }),
      ),
    )
    if (!exit) {
      this.#stopping = null
      this.#sync()
      return
    }
    const code = trigger.kind === 'fatal' || reports.some((r: ShutdownReport) => !r.ok) ? 1 : 0
    await this.#flushAndExit(code)
  }

  /** Whatever happens (a hung hook past its limit, a handle that never closes), the process goes. */
  #armFinalLimit(controllers: GracefulController[], trigger: Trigger): void {
    let limit = 0
    for (const c of controllers) {
      const timeout = trigger.kind === 'fatal' ? Math.min(c.options.fatalTimeout, c.limits.timeout) : c.limits.timeout
      const total = timeout + c.options.abortGrace + c.limits.hooksTimeout
      limit = Math.max(limit, c.limits.budget !== null ? Math.min(total, c.limits.budget - EXIT_RESERVE) : total + 1000)
    }
    this.#exitTimer = setTimeout(() => {
      this.#log((l) => l.error(`quiesce: shutdown did not finish within its final limit of ${limit} ms; exiting 1`), true)
      void this.#flushAndExit(1)
    }, limit)
    this.#exitTimer.unref()
  }

  /** D9: the last lines reach the pipe before the exit (bounded). */
  async #flushAndExit(code: number): Promise<void> {
    const loggers = new Set<Logger>()
    for (const c of this.controllers) if (c.options.logger) loggers.add(c.options.logger)
    const flushes: Array<Promise<void>> = []
    for (const l of loggers) {
      if (typeof l.flush === 'function') flushes.push(new Promise((resolve) => { try { l.flush?.(() => resolve()) } catch { resolve() } }))
    }
    for (const stream of [process.stdout, process.stderr]) {
      flushes.push(new Promise((resolve) => {
        if (!stream.writable) return resolve()
        stream.write('', () => resolve())
      }))
    }
    await Promise.race([Promise.all(flushes), new Promise((resolve) => setTimeout(resolve, EXIT_RESERVE).unref())])
    process.exit(code)
  }

  #log(fn: (l: Logger) => void, fallbackToConsole = false): void {
    const loggers = new Set<Logger>()
    for (const c of this.controllers) if (c.options.logger) loggers.add(c.options.logger)
    if (loggers.size === 0 && fallbackToConsole) loggers.add(console)
    for (const l of loggers) {
      try { fn(l) } catch { /* a broken logger must not stop the shutdown */ }
    }
  }
}

export function coordinator(): Coordinator {
  const g = globalThis as { [kCoordinator]?: Coordinator }
  g[kCoordinator] ??= new Coordinator()
  return g[kCoordinator]
}
