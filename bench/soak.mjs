#!/usr/bin/env node
// Soak (issue 14): N keep-alive requests over C connections through each target — bare node:http,
// Express 5, Koa 3, Fastify 5, each with quiesce — reading the request's quiesce signal on every
// request. It is a benchmark, not a timed test: it prints what it measured and fails (exit 1)
// only when an invariant is broken (requestsInFlight not back to 0, listeners growing, requests
// lost).
//
//   pnpm build && node --expose-gc bench/soak.mjs            # 1,000,000 requests, 1,000 connections
//   SOAK_REQUESTS=50000 SOAK_CONNECTIONS=200 pnpm bench:soak # a short run
//   SOAK_TARGETS=node,fastify pnpm bench:soak                # some targets only
//
// Each target runs in its own child process (started with --expose-gc, so heap numbers are after
// two full GCs); this process is the load generator: C raw TCP sockets, each sending one GET at a
// time (keep-alive, no pipelining) until N responses have arrived in total.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const TARGETS = ['node', 'express', 'koa', 'fastify']

if (process.argv[2] === '--server') await server(process.argv[3])
else await main()

// ── the server child ──────────────────────────────────────────────────────────

async function server(target) {
  const send = (m) => process.send(m)
  let signalsRead = 0
  let aborted = 0
  // every request reads its quiesce signal (the lazy path is created on every request)
  const touch = (signal) => {
    signalsRead++
    if (signal.aborted) aborted++
  }
  const options = { signals: false, logger: false, timeout: 5000 }
  let srv
  let g
  if (target === 'node') {
    const { graceful, requestSignal } = await import('@quiesce/core')
    srv = http.createServer((req, res) => {
      touch(requestSignal(req))
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 })
      res.end('ok\n')
    })
    g = graceful(srv, options)
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
  } else if (target === 'express') {
    const { default: express } = await import('express')
    const { graceful, requestSignal } = await import('@quiesce/express')
    const app = express()
    g = graceful(options)
    app.use(g)
    app.get('/', (req, res) => {
      touch(requestSignal(req))
      res.type('text').send('ok\n')
    })
    srv = app.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    g.attach(srv)
  } else if (target === 'koa') {
    const { default: Koa } = await import('koa')
    const { graceful, requestSignal } = await import('@quiesce/koa')
    const app = new Koa()
    g = graceful(options)
    app.use(g)
    app.use((ctx) => {
      touch(requestSignal(ctx))
      ctx.type = 'text'
      ctx.body = 'ok\n'
    })
    srv = app.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    g.attach(srv)
  } else if (target === 'fastify') {
    const { default: Fastify } = await import('fastify')
    const { gracefulPlugin, requestSignal } = await import('@quiesce/fastify')
    const app = Fastify({ logger: false })
    await app.register(gracefulPlugin, options)
    app.get('/', async (request, reply) => {
      touch(requestSignal(request))
      void reply.type('text/plain')
      return 'ok\n'
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    srv = app.server
    g = app.graceful
  } else {
    throw new Error(`unknown target ${target}`)
  }
  srv.keepAliveTimeout = 120_000
  srv.headersTimeout = 130_000
  const sockets = new Set()
  srv.on('connection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  const count = (emitter) => emitter.eventNames().reduce((n, e) => n + emitter.listenerCount(e), 0)
  const snapshot = () => {
    globalThis.gc?.()
    globalThis.gc?.()
    const perSocket = [...sockets].map(count)
    const mem = process.memoryUsage()
    return {
      gc: typeof globalThis.gc === 'function',
      heapUsed: mem.heapUsed,
      rss: mem.rss,
      stats: g.stats(),
      serverListeners: count(srv),
      processListeners: count(process),
      sockets: sockets.size,
      socketListenersMax: perSocket.length ? Math.max(...perSocket) : 0,
      socketListenersMin: perSocket.length ? Math.min(...perSocket) : 0,
      signalsRead,
      aborted,
      cpu: process.cpuUsage(),
    }
  }
  process.on('message', async (m) => {
    if (m.cmd === 'snapshot') send({ type: 'snapshot', id: m.id, ...snapshot() })
    else if (m.cmd === 'shutdown') {
      const report = await g.shutdown()
      const after = snapshot()
      // and once more a moment later: what the drain still held right at its end vs. what stays
      await new Promise((resolve) => setTimeout(resolve, 500))
      const later = snapshot()
      send({
        type: 'shutdown',
        id: m.id,
        report: {
          ok: report.ok,
          drainMs: report.drainMs,
          timedOut: report.timedOut,
          socketsClosedIdle: report.socketsClosedIdle,
          forced: report.forced.length,
        },
        after,
        later,
      })
      process.disconnect()
    }
  })
  send({ type: 'ready', port: srv.address().port, pid: process.pid })
}

// ── the parent: load generator and report ──────────────────────────────────────

function intEnv(name, fallback) {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v.replaceAll('_', ''))
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number ≥ 1 (got ${v})`)
  return n
}

async function main() {
  const total = intEnv('SOAK_REQUESTS', 1_000_000)
  const connections = Math.min(intEnv('SOAK_CONNECTIONS', 1000), total)
  const targets = (process.env.SOAK_TARGETS ?? TARGETS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t} (one of ${TARGETS.join(', ')})`)
  console.log(`# soak: ${total.toLocaleString('en')} keep-alive requests over ${connections.toLocaleString('en')} connections per target`)
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} × ${os.availableParallelism()}, ${os.platform()} ${os.release()}\n`)
  const rows = []
  let failed = false
  for (const target of targets) {
    const r = await soak(target, total, connections)
    rows.push(r)
    if (r.problems.length) failed = true
    console.error(`${target}: ${r.done} responses in ${(r.ms / 1000).toFixed(1)} s${r.problems.length ? ` — PROBLEMS: ${r.problems.join('; ')}` : ''}`)
  }
  const mb = (b) => (b / 1048576).toFixed(1)
  const head = [
    'target',
    'requests',
    'req/s',
    'heap under load at 10 % → 90 % (MB)',
    'heap before → after load → after drain → 0.5 s later (MB)',
    'RSS before → after load (MB)',
    'inFlight after load / after drain',
    'server listeners before → after',
    'process listeners before → after',
    'listeners per socket (early → end)',
    'signals read',
    'drain',
    'problems',
  ]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`]
  for (const r of rows) {
    lines.push(
      `| ${[
        r.target,
        r.done.toLocaleString('en'),
        Math.round(r.done / (r.ms / 1000)).toLocaleString('en'),
        r.at10 && r.at90 ? `${mb(r.at10.heapUsed)} → ${mb(r.at90.heapUsed)}` : '—',
        `${mb(r.before.heapUsed)} → ${mb(r.after.heapUsed)} → ${mb(r.drained.heapUsed)} → ${mb(r.later.heapUsed)}`,
        `${mb(r.before.rss)} → ${mb(r.after.rss)}`,
        `${r.after.stats.requestsInFlight} / ${r.drained.stats.requestsInFlight}`,
        `${r.before.serverListeners} → ${r.after.serverListeners}`,
        `${r.before.processListeners} → ${r.after.processListeners}`,
        `${r.early.socketListenersMin}–${r.early.socketListenersMax} → ${r.after.socketListenersMin}–${r.after.socketListenersMax}`,
        r.after.signalsRead.toLocaleString('en'),
        `${r.report.ok ? 'ok' : 'NOT ok'}, ${r.report.drainMs} ms, ${r.report.socketsClosedIdle} idle closed`,
        r.problems.length ? r.problems.join('; ') : 'none',
      ].join(' | ')} |`,
    )
  }
  console.log(lines.join('\n'))
  console.log(
    '\nheap: heapUsed after two full GCs in the server process (under load: at 10 % and 90 % of the requests, every connection busy; before: listening, no connection; after load: every connection still open and idle; after drain: shutdown() resolved, the load’s connections closed by it as idle). listeners per socket: min–max over the open sockets, fresh sockets after 10 requests each → the load’s sockets after all their requests.',
  )
  if (failed) process.exitCode = 1
}

async function soak(target, total, connections) {
  const child = fork(self, ['--server', target], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [ready] = await once(child, 'message')
  let ids = 0
  const ask = (cmd) =>
    new Promise((resolve) => {
      const id = ++ids
      const on = (m) => {
        if (m.id !== id) return
        child.off('message', on)
        resolve(m)
      }
      child.on('message', on)
      child.send({ cmd, id })
    })
  const before = await ask('snapshot')
  const problems = []
  const t0 = performance.now()
  const open = []
  // two snapshots under the same load (every connection busy): at 10 % and at 90 % of the requests
  const marks = new Map([
    [Math.floor(total * 0.1), null],
    [Math.floor(total * 0.9), null],
  ])
  const { done, errors } = await drive(ready.port, total, connections, open, (n) => {
    if (marks.has(n)) marks.set(n, ask('snapshot'))
  })
  const [at10, at90] = await Promise.all([...marks.values()])
  const ms = performance.now() - t0
  // every connection still open (idle, keep-alive) after ~total/connections requests each
  const after = await ask('snapshot')
  // listeners per socket early in a socket's life: fresh sockets after 10 requests each, still open
  const early = await earlySockets(ready.port, Math.min(connections, 100), ask)
  // the drain, with the load's connections still open and idle: each closed as idle (D1)
  const shut = await ask('shutdown')
  await once(child, 'exit')
  for (const s of open) s.destroy()
  if (done !== total) problems.push(`${total - done} requests got no response`)
  if (errors) problems.push(`${errors} connection errors`)
  if (after.stats.requestsInFlight !== 0) problems.push(`requestsInFlight ${after.stats.requestsInFlight} after the load`)
  if (shut.after.stats.requestsInFlight !== 0) problems.push(`requestsInFlight ${shut.after.stats.requestsInFlight} after the drain`)
  if (shut.after.stats.connections !== 0) problems.push(`${shut.after.stats.connections} connections after the drain`)
  if (after.serverListeners !== before.serverListeners) problems.push(`server listeners ${before.serverListeners} → ${after.serverListeners}`)
  if (after.processListeners !== before.processListeners) problems.push(`process listeners ${before.processListeners} → ${after.processListeners}`)
  if (after.socketListenersMax > early.socketListenersMax) problems.push(`listeners per socket grew: ${early.socketListenersMax} → ${after.socketListenersMax}`)
  if (after.signalsRead < total) problems.push(`signal read on ${after.signalsRead} of ${total} requests`)
  if (!shut.report.ok) problems.push('drain not ok')
  if (shut.report.socketsClosedIdle < open.length) problems.push(`the drain closed ${shut.report.socketsClosedIdle} of ${open.length} idle connections as idle`)
  return { target, done, ms, before, at10, at90, after, early, drained: shut.after, later: shut.later, report: shut.report, problems }
}

/** A few fresh keep-alive sockets, 10 requests each, measured while still open: listeners per socket early in a socket's life. */
async function earlySockets(port, n, ask) {
  const socks = []
  await drive(port, n * 10, n, socks)
  const snap = await ask('snapshot')
  for (const s of socks) s.destroy()
  return snap
}

/**
 * `connections` raw sockets, each sending `GET /` with keep-alive one at a time until `total`
 * responses have arrived in all. Responses are parsed just enough: headers, then content-length.
 * The sockets are left open (idle) and pushed into `keep`.
 */
function drive(port, total, connections, keep, onResponse) {
  return new Promise((resolve) => {
    let sent = 0
    let done = 0
    let errors = 0
    let open = 0
    const REQ = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    const finish = () => {
      if (open === 0) resolve({ done, errors })
    }
    for (let i = 0; i < connections; i++) {
      open++
      const s = net.connect(port, '127.0.0.1')
      s.setNoDelay(true)
      let buf = Buffer.alloc(0)
      let need = -1 // bytes of body still expected once headers are parsed
      let closed = false
      const close = () => {
        if (closed) return
        closed = true
        open--
        keep.push(s)
        finish()
      }
      const next = () => {
        if (sent >= total) return close()
        sent++
        s.write(REQ)
      }
      s.on('connect', next)
      s.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
        for (;;) {
          if (need < 0) {
            const end = buf.indexOf('\r\n\r\n')
            if (end < 0) return
            const head = buf.subarray(0, end).toString('latin1')
            const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
            need = m ? Number(m[1]) : 0
            buf = buf.subarray(end + 4)
          }
          if (buf.length < need) return
          buf = buf.subarray(need)
          need = -1
          done++
          onResponse?.(done)
          next()
          if (closed) return
        }
      })
      s.on('error', () => {
        errors++
      })
      s.on('close', () => {
        if (!closed) {
          closed = true
          open--
          finish()
        }
      })
    }
  })
}
