// The server under test, one per child process: `node server.mjs <variant> '<json config>'`.
//
// Every variant serves the same routes and wires its library the way that library's README tells
// users to (signal handling included), so the parent can measure CPU per request, trigger the
// drain with a real SIGTERM (or, for `pnpm bench`, with the API call named in a `shutdown`
// message), and watch what happens over real sockets. The child reports over IPC:
//   { type: 'ready', port }                   listening on 127.0.0.1
//   { type: 'signal', at }                    SIGTERM arrived (before any library's handler ran)
//   { type: 'cpu', us }                       CPU (user + system) spent between cpu-start and cpu-stop
//   { type: 'heap', bytes }                   heapUsed after two full GCs (run with --expose-gc)
//   { type: 'abort', route, reason, at }      a request signal aborted (D6 deadline, D10 client)
//   { type: 'closed', at, signalAt, ... }     the server emitted 'close' (also written to resultFile,
//                                             because libraries that exit the process may cut IPC),
//                                             with the server's CPU time since the drain was triggered
//   { type: 'report', ... }                   quiesce's ShutdownReport counters, after a `shutdown` message
//   { type: 'profile', share, ... }           share of busy CPU spent in the library's own code (V8 profile)
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { epoch } from './raw.mjs'

const variant = process.argv[2]
const config = JSON.parse(process.argv[3] ?? '{}')
const timeout = config.timeout ?? 3000
const send = (msg) => process.send?.(msg)

// When the drain signal arrived, recorded before any library sees it (once: a library that
// re-raises the signal to die by it, like terminus, must find no listener of ours left).
let signalAt = null
let drainCpu = null // process.cpuUsage() when the drain was triggered: the drain's own CPU cost is reported at 'close'
process.once('SIGTERM', () => {
  signalAt = epoch()
  drainCpu = process.cpuUsage()
  send({ type: 'signal', at: signalAt })
})

// ── the routes, shared by every node:http variant ─────────────────────────────
let lastFinish = 0
const OK = 'ok\n'

/**
 * @param {{deadline?: (req:any)=>AbortSignal|null, client?: (req:any)=>AbortSignal|null}} signals
 *   where the library offers a per-request signal: aborted at the shutdown deadline (D6) /
 *   when the client leaves (D10). null = not offered.
 */
function nodeHandler(signals = {}) {
  return (req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 })
      res.end(OK)
      return
    }
    const url = new URL(req.url, 'http://x')
    const q = (k) => Number(url.searchParams.get(k))
    switch (url.pathname) {
      case '/slow':
        setTimeout(() => res.end('slow\n'), q('ms'))
        return
      case '/until':
        res.on('finish', () => {
          lastFinish = Math.max(lastFinish, epoch())
        })
        setTimeout(() => res.end('done\n'), Math.max(0, q('at') - epoch()))
        return
      case '/stream': {
        res.writeHead(200, { 'content-type': 'text/plain' })
        let i = 0
        const n = q('n')
        const timer = setInterval(() => {
          i++
          if (i < n) res.write(`chunk ${i}\n`)
          else {
            clearInterval(timer)
            res.end(`chunk ${i}\n`)
          }
        }, q('every'))
        res.on('close', () => clearInterval(timer))
        return
      }
      case '/hang':
      case '/wait': {
        const which = url.pathname === '/hang' ? signals.deadline : signals.client
        const signal = which?.(req) ?? null
        signal?.addEventListener('abort', () => {
          const reason = String(signal.reason?.message ?? signal.reason)
          send({ type: 'abort', route: url.pathname, reason, at: epoch() })
          if (!res.headersSent && !res.destroyed) {
            res.writeHead(503, { 'content-type': 'text/plain' })
            res.end(`aborted: ${reason}\n`)
          }
        })
        return // never answers on its own
      }
      case '/listeners': {
        const s = req.socket
        const n = s.eventNames().reduce((sum, e) => sum + s.listenerCount(e), 0)
        res.end(`${n}\n`)
        return
      }
      default:
        res.statusCode = 404
        res.end()
    }
  }
}

// ── the variants ──────────────────────────────────────────────────────────────

/** @returns {Promise<{server: http.Server, shutdown?: (how:string)=>unknown}>} */
async function build() {
  switch (variant) {
    case 'bare': {
      // what users write without a library: server.close() on SIGTERM
      const server = http.createServer(nodeHandler())
      process.on('SIGTERM', () => server.close())
      return {
        server,
        shutdown: (how) => {
          server.close()
          if (how === 'close-all') server.closeAllConnections()
          // the same 50 ms wait as quiesce's default idleGrace, then the same close: what the wait alone costs
          if (how === 'close-all-after-50') setTimeout(() => server.closeAllConnections(), 50)
        },
      }
    }
    case 'quiesce': {
      // BENCH_QUIESCE_CORE: another build of @quiesce/core (a path), to measure a core patch side by side
      const { graceful, requestSignal } = await import(process.env.BENCH_QUIESCE_CORE ?? '@quiesce/core')
      const server = http.createServer(nodeHandler({ deadline: requestSignal, client: requestSignal }))
      const g = graceful(server, { timeout, logger: false, ...config.quiesce })
      return { server, shutdown: () => g.shutdown() }
    }
    case 'http-terminator': {
      const { createHttpTerminator } = await import('http-terminator')
      const server = http.createServer(nodeHandler())
      const terminator = createHttpTerminator({ server, gracefulTerminationTimeout: timeout })
      process.on('SIGTERM', () => void terminator.terminate())
      return { server }
    }
    case 'stoppable': {
      const { default: stoppable } = await import('stoppable')
      const server = stoppable(http.createServer(nodeHandler()), timeout)
      process.on('SIGTERM', () => server.stop())
      return { server }
    }
    case 'terminus': {
      const { createTerminus } = await import('@godaddy/terminus')
      const server = http.createServer(nodeHandler())
      createTerminus(server, { timeout, healthChecks: { '/healthcheck': async () => {} }, logger: () => {} })
      return { server }
    }
    case 'http-graceful-shutdown': {
      const { default: gracefulShutdown } = await import('http-graceful-shutdown')
      const server = http.createServer(nodeHandler())
      return { server, after: () => gracefulShutdown(server, { timeout }) }
    }
    case 'close-with-grace': {
      const { default: closeWithGrace } = await import('close-with-grace')
      const server = http.createServer(nodeHandler())
      // the README's pattern: the user closes the server inside the callback
      closeWithGrace({ delay: timeout, logger: false }, async () => {
        await new Promise((resolve) => server.close(resolve))
      })
      return { server }
    }
    case 'lightship': {
      // lightship's docs: it runs the probes and the signal handling; the app's server is closed
      // by a shutdown handler — here with http-terminator, as lightship's maintainer recommends
      const { createLightship } = await import(config.lightshipModule)
      const { createHttpTerminator } = await import('http-terminator')
      const server = http.createServer(nodeHandler())
      const terminator = createHttpTerminator({ server, gracefulTerminationTimeout: timeout })
      const lightship = await createLightship({
        detectKubernetes: false, // lightship ignores signals in its "local mode"; behave as in a cluster
        port: 0,
        shutdownDelay: 0, // no readiness delay, like every other column here
        gracefulShutdownTimeout: timeout,
        shutdownHandlerTimeout: timeout,
      })
      lightship.registerShutdownHandler(() => terminator.terminate())
      return { server, after: () => lightship.signalReady() }
    }
    case 'fastify':
    case 'fastify+quiesce': {
      const { default: Fastify } = await import('fastify')
      const app = Fastify()
      let signals = { client: (request) => request.signal ?? null } // Fastify ≥ 5.8's own signal
      if (variant === 'fastify+quiesce') {
        const mod = await import(config.fastifyModule)
        await app.register(mod.gracefulPlugin, { timeout, logger: false })
        const rs = mod.requestSignal
        signals = { deadline: rs, client: rs }
      } else {
        process.on('SIGTERM', () => void app.close()) // Fastify's own close, default options
      }
      fastifyRoutes(app, signals)
      await app.ready()
      return { server: app.server, app, shutdown: () => app.close() }
    }
    case 'express':
    case 'express+quiesce': {
      const { default: express } = await import('express')
      const app = express()
      let g = null
      if (variant === 'express+quiesce') {
        const { graceful } = await import('@quiesce/express')
        g = graceful({ timeout, logger: false })
        app.use(g)
      }
      app.get('/', (_req, res) => res.type('text').send(OK))
      const server = http.createServer(app)
      g?.attach(server)
      return { server, shutdown: () => (g ? g.shutdown() : server.close()) }
    }
    case 'koa':
    case 'koa+quiesce': {
      const { default: Koa } = await import('koa')
      const app = new Koa()
      let g = null
      if (variant === 'koa+quiesce') {
        const { graceful } = await import('@quiesce/koa')
        g = graceful({ timeout, logger: false })
        app.use(g)
      }
      app.use((ctx) => {
        ctx.body = OK
      })
      const server = http.createServer(app.callback())
      g?.attach(server)
      return { server, shutdown: () => (g ? g.shutdown() : server.close()) }
    }
    default:
      throw new Error(`unknown variant ${variant}`)
  }
}

function fastifyRoutes(app, signals) {
  app.get('/', async () => OK)
  app.get('/slow', (request, reply) => {
    setTimeout(() => reply.send('slow\n'), Number(request.query.ms))
  })
  app.get('/until', (request, reply) => {
    reply.raw.on('finish', () => {
      lastFinish = Math.max(lastFinish, epoch())
    })
    setTimeout(() => reply.send('done\n'), Math.max(0, Number(request.query.at) - epoch()))
  })
  app.get('/stream', (request, reply) => {
    const n = Number(request.query.n)
    let i = 0
    const body = new Readable({ read() {} })
    const timer = setInterval(() => {
      i++
      body.push(`chunk ${i}\n`)
      if (i >= n) {
        clearInterval(timer)
        body.push(null)
      }
    }, Number(request.query.every))
    reply.raw.on('close', () => clearInterval(timer))
    reply.type('text/plain').send(body)
  })
  for (const [path, pick] of [
    ['/hang', 'deadline'],
    ['/wait', 'client'],
  ]) {
    app.get(path, (request, reply) => {
      const signal = signals[pick]?.(request) ?? null
      signal?.addEventListener('abort', () => {
        const reason = String(signal.reason?.message ?? signal.reason)
        send({ type: 'abort', route: path, reason, at: epoch() })
        if (!reply.sent && !reply.raw.destroyed) reply.code(503).send(`aborted: ${reason}\n`)
      })
    })
  }
  app.get('/listeners', (request, reply) => {
    const s = request.raw.socket
    reply.send(`${s.eventNames().reduce((sum, e) => sum + s.listenerCount(e), 0)}\n`)
  })
}

// ── run ───────────────────────────────────────────────────────────────────────
const built = await build()
const { server } = built
// drain benchmarks hold thousands of sockets open for seconds: not reaped by Node's 5 s default
if (config.keepAliveTimeout !== undefined) server.keepAliveTimeout = config.keepAliveTimeout
let shutdownAt = null
// when the server's last socket closed, as the server saw it (where the time to 'close' goes)
let lastSocketClose = null
let lastSocketFin = null // our FIN flushed (the socket's writable side finished)
let lastClientFin = null // the client's FIN read
server.on('connection', (socket) => {
  socket.on('close', () => {
    lastSocketClose = epoch()
  })
  socket.on('finish', () => {
    lastSocketFin = epoch()
  })
  socket.on('end', () => {
    lastClientFin = epoch()
  })
})
server.on('close', () => {
  const at = epoch()
  const cpu = drainCpu && process.cpuUsage(drainCpu)
  const result = {
    type: 'closed',
    at,
    signalAt,
    shutdownAt,
    lastFinish: lastFinish || null,
    lastSocketClose,
    lastSocketFin,
    lastClientFin,
    cpuUs: cpu ? cpu.user + cpu.system : null,
  }
  if (config.resultFile) writeFileSync(config.resultFile, JSON.stringify(result))
  send(result)
})

let cpuStart = null
let profiler = null

async function startProfiler() {
  const { Session } = await import('node:inspector')
  const session = new Session()
  session.connect()
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))))
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 100 })
  return { post }
}

/** Where the code of the library under test lives: quiesce's builds, and the peers' packages. */
const LIBRARY =
  /\/packages\/[a-z]+\/dist\/|\/@quiesce\/|\/node_modules\/(http-terminator|stoppable|@godaddy\/terminus|http-graceful-shutdown|close-with-grace|lightship)\/|\/\.cache\/lightship\.mjs/
/** The app's own code and the frameworks it runs on. */
const APP = /\/bench\/lib\/|\/node_modules\/(express|koa|fastify|router|find-my-way|avvio|light-my-request|@fastify\/[a-z-]+)\//

/**
 * What share of the server's busy CPU time was spent in the library's own code, from a V8 CPU
 * profile: a sample counts for the library when, walking its stack from the leaf, a frame of the
 * library comes before any frame of the app or framework (so Node internals and dependencies
 * that the library calls, like adding a listener, count for it; what the app calls does not).
 */
let profileCpu = null

function libraryShare(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const owner = new Map()
  const frameOf = new Map()
  const ownerOf = (id) => {
    if (owner.has(id)) return owner.get(id)
    let o = 'other'
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const url = byId.get(x).callFrame.url
      if (LIBRARY.test(url)) {
        o = 'library'
        const f = byId.get(x).callFrame
        const leaf = byId.get(id).callFrame
        // Node's EventEmitter emit that the library hands the event on to (the app's listeners run
        // in it): it runs as well without the library, called by Node instead; it counts for Node
        if (x !== id && parent.get(id) === x && leaf.functionName === 'emit' && leaf.url === 'node:events') o = 'handoff'
        // the library's frame the sample counts for, and the leaf under it (Node's code it called)
        frameOf.set(
          id,
          `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}${x === id ? '' : ` → ${leaf.functionName || '(anonymous)'}`}`,
        )
        break
      }
      if (APP.test(url)) {
        o = 'app'
        break
      }
    }
    owner.set(id, o)
    return o
  }
  // Samples are counted, not weighted by their time deltas: on a shared machine a sample's delta
  // includes the time the process was descheduled, which lands on whatever code was running. The
  // library's CPU time is its share of the samples that were on the CPU (all but '(idle)') times
  // the CPU the process used meanwhile (process.cpuUsage()). `share` stays the share of the busy
  // CPU (JS and Node code, without '(program)' and GC), as before.
  let busy = 0
  let library = 0
  let handoff = 0
  let onCpu = 0
  const frames = new Map()
  for (const id of profile.samples) {
    const name = byId.get(id).callFrame.functionName
    if (name !== '(idle)') onCpu++
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') continue
    busy++
    const o = ownerOf(id)
    if (o === 'handoff') handoff++
    if (o === 'library') {
      library++
      const f = frameOf.get(id)
      frames.set(f, (frames.get(f) ?? 0) + 1)
    }
  }
  const usPerSample = (profileCpu ?? 0) / Math.max(1, onCpu)
  const top = [...frames]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([f, n]) => [f, n * usPerSample])
  return { share: busy > 0 ? library / busy : 0, libraryUs: library * usPerSample, handoffUs: handoff * usPerSample, busyUs: busy * usPerSample, top }
}
process.on('message', async (msg) => {
  if (msg?.cmd === 'cpu-start') {
    cpuStart = process.cpuUsage()
    send({ type: 'cpu-started' })
  } else if (msg?.cmd === 'cpu-stop') {
    const d = process.cpuUsage(cpuStart)
    send({ type: 'cpu', us: d.user + d.system })
  } else if (msg?.cmd === 'heap') {
    globalThis.gc?.()
    globalThis.gc?.()
    send({ type: 'heap', bytes: process.memoryUsage().heapUsed, gc: typeof globalThis.gc === 'function' })
  } else if (msg?.cmd === 'profile-start') {
    profiler ??= await startProfiler()
    await profiler.post('Profiler.start')
    profileCpu = process.cpuUsage()
    send({ type: 'profile-started' })
  } else if (msg?.cmd === 'profile-stop') {
    const d = process.cpuUsage(profileCpu)
    profileCpu = d.user + d.system
    const { profile } = await profiler.post('Profiler.stop')
    // the raw profile, for a flame graph (Chrome DevTools, speedscope): BENCH_PROFILE_DIR names the folder
    if (process.env.BENCH_PROFILE_DIR) {
      const { mkdirSync, writeFileSync } = await import('node:fs')
      mkdirSync(process.env.BENCH_PROFILE_DIR, { recursive: true })
      writeFileSync(`${process.env.BENCH_PROFILE_DIR}/${variant}-node${process.versions.node}-${process.pid}.cpuprofile`, JSON.stringify(profile))
    }
    send({ type: 'profile', ...libraryShare(profile) })
  } else if (msg?.cmd === 'shutdown') {
    shutdownAt = epoch()
    drainCpu = process.cpuUsage()
    const report = await built.shutdown(msg.how)
    if (report?.socketsClosedIdle !== undefined) {
      const { forced, hooks, ...counts } = report
      send({ type: 'report', ...counts, forced: forced.length })
    }
  }
})

if (built.app) await built.app.listen({ port: 0, host: '127.0.0.1' })
else await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
built.after?.()
send({ type: 'ready', port: server.address().port })
