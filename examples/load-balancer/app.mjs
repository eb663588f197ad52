// One instance of an app behind a load balancer (HAProxy, nginx): bare node:http + @quiesce/core.
//
//   PORT=3001 node examples/load-balancer/app.mjs
//
// Options come from the environment, so the same file runs behind either proxy:
//   PORT                 the port to listen on (127.0.0.1); required
//   READINESS_DELAY_MS   quiesce `readinessDelay` (HAProxy: ≥ fall × inter of its health check)
//   IDLE_GRACE_MS        quiesce `idleGrace` (nginx: above the upstream `keepalive_timeout`)
//   TIMEOUT_MS           quiesce `timeout`
//   LEDGER_FILE          optional: one line per request the app executed ("POST <id>"), so a
//                        rolling restart can prove every POST ran exactly once
//
// On SIGTERM (or SIGINT) quiesce drains and the process exits 0 when nothing was cut.
import fs from 'node:fs'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { graceful } from '@quiesce/core'

const port = Number(process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new TypeError(`PORT must be a port number, got ${process.env.PORT}`)
const ms = (name, fallback) => (process.env[name] === undefined ? fallback : Number(process.env[name]))
const ledger = process.env.LEDGER_FILE ? fs.openSync(process.env.LEDGER_FILE, 'a') : null

/** Written synchronously, before the answer: a line here means the request ran. */
function executed(method, id) {
  if (ledger !== null) fs.writeSync(ledger, `${method} ${id}\n`)
}

async function readBody(req) {
  let body = ''
  for await (const chunk of req) body += chunk
  return body
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  // which process answered: lets a rolling restart see that the proxy routes to a new instance
  res.setHeader('X-Instance', String(process.pid))
  if (url.pathname === '/ready') return g.readiness(req, res) // 200 while serving, 503 from the signal on
  if (url.pathname === '/live') return g.liveness(req, res)
  if (req.method === 'GET' && url.pathname === '/work') {
    const id = url.searchParams.get('id') ?? ''
    executed('GET', id)
    await sleep(Math.random() * 5) // a little work, so that requests are in flight at the signal
    return res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`ok ${id}`)
  }
  if (req.method === 'POST' && url.pathname === '/orders') {
    const id = await readBody(req)
    executed('POST', id)
    await sleep(Math.random() * 5)
    return res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`created ${id}`)
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found')
})

// Keep idle keep-alive connections open longer than the proxy does (nginx's upstream
// `keepalive_timeout`, HAProxy's idle pool), so that the proxy, not the app, closes them
// while running — the same rule as AWS's for its load balancers.
server.keepAliveTimeout = 65_000

const g = graceful(server, {
  readinessDelay: ms('READINESS_DELAY_MS', 0),
  idleGrace: ms('IDLE_GRACE_MS', 50),
  timeout: ms('TIMEOUT_MS', 10_000),
})

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port} (pid ${process.pid})`)
})
