/**
 * @quiesce/fastify — graceful shutdown for Fastify 5.
 *
 * ```ts
 * import Fastify from 'fastify'
 * import { gracefulPlugin, readiness } from '@quiesce/fastify'
 *
 * const fastify = Fastify({ logger: true })
 * await fastify.register(gracefulPlugin, { timeout: 10_000 })   // first, before your plugins
 * fastify.get('/ready', readiness)
 * fastify.get('/poll', async (request) => longPoll({ signal: request.quiesceSignal }))
 * await fastify.listen({ port: 3000, host: '127.0.0.1' })
 * // Ctrl+C / SIGTERM, fastify.close() and fastify.graceful.shutdown() all drain the same way.
 * ```
 * @module
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { secondaryServers } from './internals.js'
import {
  createFrameworkController,
  requestSignal as nodeRequestSignal,
  type AnyServer,
  type FrameworkBinding,
  type FrameworkController,
  type GracefulOptions,
  type HealthAnswer,
  type Logger,
  type ServerController,
  type ShutdownOptions,
  type ShutdownReport,
} from '@quiesce/core'

/** The plugin's options: the core's. `logger` defaults to `fastify.log`. */
export type FastifyGracefulOptions = GracefulOptions

/** `fastify.graceful`: the controller every quiesce package offers, with the readiness and liveness routes. */
export type FastifyGraceful = ServerController & {
  /** `fastify.get('/ready', fastify.graceful.readiness)`: the same handler as the `readiness` export. */
  readonly readiness: (request: FastifyRequest, reply: FastifyReply) => void
  /** `fastify.get('/live', fastify.graceful.liveness)`: the same handler as the `liveness` export. */
  readonly liveness: (request: FastifyRequest, reply: FastifyReply) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * quiesce's controller for this instance: `state`, `stats()`, `draining`, `ready`,
     * `shutdown()` (drains, then closes Fastify: `fastify.close()`; resolves with the report),
     * `pause()`, `resume()`, `onShutdown()`, `beforeShutdown()`, `readiness`, `liveness`.
     */
    readonly graceful: FastifyGraceful
  }
  interface FastifyRequest {
    /**
     * quiesce's request signal: aborts with `ClientClosedError` when the client leaves before
     * the response finished (D10) and with `ShutdownDeadlineError` when the drain reaches its
     * deadline while the request still runs (D6). Created on first read. Not Fastify's own
     * `request.signal` (client close, handler timeout), which stays as it is.
     */
    readonly quiesceSignal: AbortSignal
  }
}

/**
 * The seam. The core needs Node's response too (to answer 503, hold or refuse), and a Fastify
 * request carries no public link to its reply, so the binding is over the reply: `reply.request`
 * and `reply.raw` are both public.
 */
const binding = {
  name: 'fastify',
  raw: (reply: FastifyReply) => ({ req: reply.request.raw, res: reply.raw }),
  // Fastify's close() closes its servers (main and dual-stack secondary); quiesce only closes their
  // listening handles when the announce phase ends
  listener: 'framework',
  // the servers Fastify listens on, attached at onListen; a serverFactory server the app listens on
  // itself is not Fastify's to close, so its requests pass untouched
  servers: 'explicit',
  // pause, reject and a request after the FIN are settled before Fastify sees the request (D3,
  // D13): no onRequest hook, whose runner every request would pay for
  gate: 'dispatch',
} satisfies FrameworkBinding<FastifyReply>

/** One plugin per server: a second registration would drain the same sockets twice. */
const kPlugin = Symbol.for('quiesce.fastify.plugin')
/** Each instance's seam, for the `readiness` / `liveness` routes. */
const seams = new WeakMap<FastifyInstance, FrameworkController<FastifyReply>>()

/** One registration's state, shared by the hooks below. */
interface Registration {
  readonly fastify: FastifyInstance
  readonly core: FrameworkController<FastifyReply>
  readonly log: Logger | null
  /** Servers this plugin drains: the ones Fastify listened on. */
  readonly ours: Set<object>
  /** Fastify's close has begun (our preClose ran, or we called close()). */
  closing: boolean
  closeCall: Promise<void> | null
  /** Our onClose hook ran: every Fastify onClose hook registered after the plugin has run. */
  readonly closed: { promise: Promise<void>; resolve: () => void }
}

function plugin(fastify: FastifyInstance, options: FastifyGracefulOptions, done: (err?: Error) => void): void {
  const main = fastify.server as AnyServer & { [kPlugin]?: true }
  if (main[kPlugin] === true || fastify.hasDecorator('graceful')) {
    done(new Error('@quiesce/fastify is registered twice for the same Fastify server (or fastify.graceful exists already): register it once, at the root'))
    return
  }
  const ours = new Set<object>()
  const given = options?.logger
  const log = given === false || given === null ? null : drainLogger(given ?? defaultLogger(fastify), () => ours.size > 0)
  let core: FrameworkController<FastifyReply>
  try {
    core = createFrameworkController(binding, { ...options, logger: log ?? false })
  } catch (err) {
    done(err as Error)
    return
  }
  main[kPlugin] = true
  seams.set(fastify, core)
  const r: Registration = { fastify, core, log, ours, closing: false, closeCall: null, closed: deferred() }
  decorate(r)
  attachOnListen(r)
  drainOnClose(r, typeof options?.readinessDelay === 'number' ? options.readinessDelay : 0)
  done()
}

/** `fastify.graceful` (its `shutdown()` resolves once Fastify has closed too) and `request.quiesceSignal`. */
function decorate(r: Registration): void {
  let shutdown: Promise<ShutdownReport> | null = null
  r.fastify.decorate(
    'graceful',
    r.core.expose({ readiness, liveness }, (o?: ShutdownOptions) => {
      shutdown ??= r.core.shutdown(o).then(async (report) => {
        await (r.closeCall ?? r.closed.promise)
        return report
      })
      return shutdown
    }),
  )
  r.fastify.decorateRequest('quiesceSignal', {
    getter(this: FastifyRequest) {
      return nodeRequestSignal(this.raw)
    },
  })
}

/**
 * Attach what Fastify listens on, once it does: the main server and, for `localhost`, the
 * secondary one (D16). A server the app listened on itself (serverFactory) is not Fastify's to
 * close, so it is not ours to drain either.
 */
function attachOnListen(r: Registration): void {
  const attach = (server: AnyServer): void => {
    if (r.ours.has(server)) return
    r.core.attach(server)
    r.ours.add(server)
  }
  r.fastify.addHook('onListen', function quiesceOnListen(hookDone) {
    attach(r.fastify.server as AnyServer)
    const secondary = secondaryServers(r.fastify)
    if (secondary !== null) {
      for (const server of secondary) attach(server)
    } else if (r.fastify.addresses().length > 1) {
      r.log?.warn(
        `quiesce: Fastify listens on ${r.fastify.addresses().length} addresses but its extra servers cannot be found; only the main one drains — ` +
          "listen on one explicit host (listen({ port, host: '127.0.0.1' }) or host: '::')",
      )
    }
    hookDone()
  })
}

/**
 * One drain whoever starts it. A signal or `shutdown()` closes Fastify; Fastify's close runs
 * preClose after the app's own top-level preClose hooks and before it closes its server(s): the
 * drain starts there, and when the announce phase (readinessDelay, D4) is over, quiesce closes the
 * listening handles (all at once, D16) and Fastify goes on: server.close(), whose callback waits
 * for the drained server's 'close'. Fastify's own onClose hooks are part of the drain (D8, D9).
 */
function drainOnClose(r: Registration, readinessDelay: number): void {
  const { fastify, core, log } = r
  const pluginTimeout = fastify.initialConfig.pluginTimeout ?? 10_000
  if (pluginTimeout > 0 && readinessDelay >= pluginTimeout) {
    log?.warn(
      `quiesce: readinessDelay (${readinessDelay} ms) is not shorter than Fastify's pluginTimeout (${pluginTimeout} ms): a fastify.close() you call yourself holds its preClose hook for the announce phase and Fastify cuts it at pluginTimeout — ` +
        'raise pluginTimeout, or stop with a signal or fastify.graceful.shutdown() (they close Fastify after the announce phase)',
    )
  }
  const forceClose = fastify.initialConfig.forceCloseConnections === true
  if (forceClose) {
    log?.warn(
      'quiesce: forceCloseConnections: true makes fastify.close() destroy every connection as soon as the listener closes; ' +
        'requests still running then are cut and reported as forced — remove the option to let them finish',
    )
  }
  // a drain started by a signal or shutdown() closes Fastify once the announce phase is over (D4):
  // Fastify serves normally until then, and avvio's close timeout (pluginTimeout) never cuts it
  core.draining.addEventListener(
    'abort',
    () => {
      if (r.closing) return
      r.closing = true
      r.closeCall ??= core
        .frameworkClosing()
        .then(() => fastify.close())
        .then(
          () => {},
          (err: unknown) => log?.error(`quiesce: fastify.close() failed — ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
        )
    },
    { once: true },
  )
  core.onShutdown(() => r.closed.promise, { name: 'fastify onClose hooks' })
  fastify.addHook('preClose', function quiescePreClose(hookDone) {
    r.closing = true
    core.frameworkClosing().then(() => {
      // forceCloseConnections: true — Fastify destroys every connection right after this hook;
      // quiesce does it a moment earlier so that each cut request is named in the report (D6)
      if (forceClose) core.frameworkForcing()
      hookDone()
    }, hookDone)
  })
  // once Fastify closed its server(s) and ran the onClose hooks registered after the plugin:
  // fastify.close() resolves after the drain's report
  fastify.addHook('onClose', function quiesceOnClose(_instance, hookDone) {
    r.closed.resolve()
    void core.frameworkClosing()
    core.shutdown().then(() => hookDone(), hookDone)
  })
}

/**
 * `fastify.register(gracefulPlugin, options)`: drains on SIGINT/SIGTERM, `fastify.close()` and
 * `fastify.graceful.shutdown()` with the same contract (D1–D19).
 */
export const gracefulPlugin: FastifyPluginCallback<FastifyGracefulOptions> = fp(plugin, {
  name: '@quiesce/fastify',
  fastify: '5.x',
})
export default gracefulPlugin

/**
 * quiesce's signal for a Fastify request (the same as `request.quiesceSignal`): aborts with
 * `ClientClosedError` when the client leaves (D10) and `ShutdownDeadlineError` at the drain's
 * deadline (D6).
 */
export function requestSignal(request: FastifyRequest): AbortSignal {
  return nodeRequestSignal(request.raw)
}

/** `fastify.get('/ready', readiness)`: 200 while running or paused, 503 with Retry-After from the moment draining starts (D4). */
export function readiness(request: FastifyRequest, reply: FastifyReply): void {
  send(reply, seamOf(request).readiness())
}

/** `fastify.get('/live', liveness)`: 200 as long as the process answers. */
export function liveness(request: FastifyRequest, reply: FastifyReply): void {
  send(reply, seamOf(request).liveness())
}

function seamOf(request: FastifyRequest): FrameworkController<FastifyReply> {
  // an encapsulated child instance: its prototype chain leads to the root the plugin was registered on
  for (let o: object | null = request.server; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const found = seams.get(o as FastifyInstance)
    if (found !== undefined) return found
  }
  throw new Error('@quiesce/fastify: readiness/liveness need the plugin registered on this instance')
}

function send(reply: FastifyReply, answer: HealthAnswer): void {
  void reply.code(answer.status).headers(answer.headers).send(answer.body)
}

/**
 * `fastify.log`, or the console when Fastify's logger is off (`logger: false`, Fastify's default,
 * gives a logger that drops everything): an uncaught error and the drain's report must not vanish
 * (D11, D18). `logger: false` on the plugin silences quiesce.
 */
function defaultLogger(fastify: FastifyInstance): Logger {
  const log = fastify.log as unknown as Record<string, unknown>
  const dropsAll = log.info === log.warn && log.warn === log.error && typeof log.level !== 'string'
  return dropsAll ? console : (fastify.log as unknown as Logger)
}

/**
 * The drain's logger: `fastify.log` unless the app gave one. Its info lines (drain start,
 * progress, the report) are written once Fastify has listened: an instance that only ever served
 * `inject()` has nothing to drain and its `close()` stays as quiet as Fastify's. (The core guards
 * every call: a logger that throws never breaks the drain.)
 */
function drainLogger(target: Logger, listened: () => boolean): Logger {
  // not a logger: passed on as is, for the core to answer with its TypeError (D14)
  const fields = target as unknown as Record<string, unknown> | null
  if (typeof target !== 'object' || fields === null || !['info', 'warn', 'error'].every((m) => typeof fields[m] === 'function')) return target
  if (fields.flush !== undefined && typeof fields.flush !== 'function') return target
  return {
    info: (m) => {
      if (listened()) target.info(m)
    },
    warn: (m) => target.warn(m),
    error: (m) => target.error(m),
    flush: typeof target.flush === 'function' ? (callback) => target.flush?.(callback) : undefined,
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

export { QuiesceError, ClientClosedError, ShutdownDeadlineError } from '@quiesce/core'
export type { GracefulOptions, ShutdownReport, Stats, State, Controller } from '@quiesce/core'
