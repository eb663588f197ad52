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
import type { Server } from 'node:http'
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  createFrameworkController,
  requestSignal as nodeRequestSignal,
  type AnyServer,
  type FrameworkBinding,
  type FrameworkController,
  type GracefulOptions,
  type Logger,
  type ServerController,
  type ShutdownOptions,
  type ShutdownReport,
} from '@quiesce/core'

/** The plugin's options: the core's. `logger` defaults to `fastify.log`. */
export type FastifyGracefulOptions = GracefulOptions

/** `fastify.graceful`: the controller every quiesce package offers. */
export type FastifyGraceful = ServerController

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * quiesce's controller for this instance: `state`, `stats()`, `draining`, `ready`,
     * `shutdown()` (drains, then closes Fastify: `fastify.close()`; resolves with the report),
     * `pause()`, `resume()`, `onShutdown()`, `beforeShutdown()`.
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
} satisfies FrameworkBinding<FastifyReply>

/** One plugin per server: a second registration would drain the same sockets twice. */
const kPlugin = Symbol.for('quiesce.fastify.plugin')
/** Fastify's private list of the extra servers `listen()` opens for `localhost` (D16). */
const SERVER_BINDINGS = 'fastify.serverBindings'

function plugin(fastify: FastifyInstance, options: FastifyGracefulOptions, done: (err?: Error) => void): void {
  const main = fastify.server as AnyServer & { [kPlugin]?: true }
  if (main[kPlugin] === true || fastify.hasDecorator('graceful')) {
    done(new Error('@quiesce/fastify is registered twice for the same Fastify server (or fastify.graceful exists already): register it once, at the root'))
    return
  }
  /** Servers this plugin drains: the ones Fastify listened on. */
  const ours = new Set<object>()
  const given = options?.logger
  const log = given === false || given === null ? null : drainLogger(given ?? fastify.log, () => ours.size > 0)
  let core: FrameworkController<FastifyReply>
  try {
    core = createFrameworkController(binding, { ...options, logger: log ?? false })
  } catch (err) {
    done(err as Error)
    return
  }
  main[kPlugin] = true
  const retryAfter = String(Math.ceil(options?.retryAfter ?? 1))
  /** Fastify's close has begun (our preClose ran, or we called close()): its closing 503s get Retry-After. */
  let fastifyClosing = false
  let closeCall: Promise<void> | null = null
  /** Our onClose hook ran: every Fastify onClose hook registered after the plugin has run. */
  const fastifyClosed = deferred()

  const forceClose = fastify.initialConfig.forceCloseConnections === true
  if (forceClose) {
    log?.warn(
      'quiesce: forceCloseConnections: true makes fastify.close() destroy every connection as soon as the listener closes; ' +
        'requests still running then are cut and reported as forced — remove the option to let them finish',
    )
  }

  const closeFastify = (): Promise<void> => {
    closeCall ??= fastify.close().then(
      () => {},
      (err: unknown) => log?.error(`quiesce: fastify.close() failed — ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
    )
    return closeCall
  }

  // A drain started by a signal or by shutdown() closes Fastify, which runs preClose below.
  core.draining.addEventListener('abort', () => {
    if (fastifyClosing) return
    fastifyClosing = true
    void closeFastify()
  }, { once: true })

  // Fastify's own onClose hooks (the app's database, …) are part of the drain: the report, and a
  // signal's exit, wait for them (D8, D9), under the hooks' time limit.
  core.onShutdown(() => fastifyClosed.promise, { name: 'fastify onClose hooks' })

  let shutdown: Promise<ShutdownReport> | null = null
  const graceful: FastifyGraceful = {
    get state() { return core.state },
    get draining() { return core.draining },
    get ready() { return core.ready },
    get servers() { return core.servers },
    stats: () => core.stats(),
    shutdown(o?: ShutdownOptions): Promise<ShutdownReport> {
      const report = core.shutdown(o)
      shutdown ??= report.then(async (r) => {
        await (closeCall ?? fastifyClosed.promise)
        return r
      })
      return shutdown
    },
    pause: (o) => core.pause(o),
    resume: (o) => core.resume(o),
    onShutdown: (hook, o) => core.onShutdown(hook, o),
    beforeShutdown: (hook, o) => core.beforeShutdown(hook, o),
    attach(server) {
      attach(server)
      return this
    },
  }

  // Fastify's closing 503 (`return503OnClosing`, its D3 reject mode) is written before any hook
  // runs; a 'request' listener ahead of Fastify's adds Retry-After to it. The onRequest gate
  // below takes the header off again from requests Fastify lets through.
  const addRetryAfter = (_req: unknown, res: { setHeader(name: string, value: string): unknown }): void => {
    if (fastifyClosing) res.setHeader('Retry-After', retryAfter)
  }

  function attach(server: AnyServer): void {
    if (ours.has(server)) return
    core.attach(server)
    ours.add(server)
    ;(server as Server).prependListener('request', addRetryAfter)
  }

  fastify.decorate('graceful', graceful)
  fastify.decorateRequest('quiesceSignal', {
    getter(this: FastifyRequest) {
      return nodeRequestSignal(this.raw)
    },
  })

  // Attach what Fastify listens on, once it does: the main server and, for `localhost`, the
  // secondary one (D16). A server the app listened on itself (serverFactory) is not Fastify's
  // to close, so it is not ours to drain either.
  fastify.addHook('onListen', function quiesceOnListen(hookDone) {
    attach(fastify.server as AnyServer)
    const secondary = serverBindings(fastify)
    if (secondary !== null) {
      for (const server of secondary) attach(server)
    } else if (fastify.addresses().length > 1) {
      log?.warn(
        `quiesce: Fastify listens on ${fastify.addresses().length} addresses but its extra servers cannot be found; only the main one drains — ` +
          "listen on one explicit host (listen({ port, host: '127.0.0.1' }) or host: '::')",
      )
    }
    hookDone()
  })

  // The gate (D3, D13): before the route runs. Also where Fastify's closing header is undone:
  // it marks every response `Connection: close`, which makes Node drop requests pipelined
  // behind the first (their handlers ran, their answers thrown away); quiesce's marker goes on
  // the socket's last response instead (D2).
  fastify.addHook('onRequest', function quiesceGate(request, reply, hookDone) {
    const req = request.raw
    if (fastifyClosing) {
      const res = reply.raw
      if (res.getHeader('retry-after') === retryAfter) res.removeHeader('retry-after')
      if (req.httpVersionMajor === 1 && !core.ready && res.getHeader('connection') === 'close') {
        res.removeHeader('connection')
        // removeHeader also turns Node's own Connection header off for good; the marker needs it on
        ;(res as { _removedConnection?: boolean })._removedConnection = false
      }
    }
    const verdict = core.admit(reply)
    if (verdict === true) hookDone()
    else if (verdict === false) {
      // quiesce answered (503), or the request arrived after the socket's FIN (D2): Fastify must not write
      reply.hijack()
      hookDone()
    } else {
      verdict.then((run) => {
        if (!run) reply.hijack()
        hookDone()
      }, hookDone)
    }
  })

  // Fastify's close: preClose runs after the app's own top-level preClose hooks and before
  // Fastify closes its server(s). The drain starts here. When the announce phase (readinessDelay,
  // D4) is over, quiesce closes the listening handles (all of them at once, D16) and Fastify goes
  // on: server.close(), whose callback waits for the drained server's 'close'.
  fastify.addHook('preClose', function quiescePreClose(hookDone) {
    fastifyClosing = true
    core.frameworkClosing().then(() => {
      // forceCloseConnections: true — Fastify destroys every connection right after this hook;
      // quiesce does it a moment earlier so that each cut request is named in the report (D6)
      if (forceClose) core.frameworkForcing()
      hookDone()
    }, hookDone)
  })

  // Runs once Fastify closed its server(s) and ran the onClose hooks registered after the plugin:
  // fastify.close() resolves after the drain's report.
  fastify.addHook('onClose', function quiesceOnClose(_instance, hookDone) {
    fastifyClosed.resolve()
    void core.frameworkClosing()
    core.shutdown().then(() => {
      for (const server of ours) (server as Server).removeListener('request', addRetryAfter)
      hookDone()
    }, hookDone)
  })

  done()
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
  void reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8')
  if (request.server.graceful.ready) void reply.code(200).send('ok\n')
  else void reply.code(503).header('retry-after', '1').send('draining\n')
}

/** `fastify.get('/live', liveness)`: 200 as long as the process answers. */
export function liveness(_request: FastifyRequest, reply: FastifyReply): void {
  void reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').code(200).send('ok\n')
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
    info: (m) => { if (listened()) target.info(m) },
    warn: (m) => target.warn(m),
    error: (m) => target.error(m),
    flush: typeof target.flush === 'function' ? (callback) => target.flush?.(callback) : undefined,
  }
}

/**
 * The servers Fastify opened besides `fastify.server` (`listen()` on `localhost` binds the other
 * loopback family too, fastify/fastify#7043). Fastify keeps them under a private symbol only,
 * found by its description; `null` if a Fastify version no longer has it (the test suite pins it).
 */
function serverBindings(fastify: FastifyInstance): AnyServer[] | null {
  for (let o: object | null = fastify; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    for (const symbol of Object.getOwnPropertySymbols(o)) {
      if (symbol.description !== SERVER_BINDINGS) continue
      const list = (o as Record<symbol, unknown>)[symbol]
      return Array.isArray(list) ? (list as AnyServer[]) : null
    }
  }
  return null
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

export { QuiesceError, ClientClosedError, ShutdownDeadlineError } from '@quiesce/core'
export type { GracefulOptions, ShutdownReport, Stats, State, Controller } from '@quiesce/core'
