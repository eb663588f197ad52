// The quiesce demo: a server with three idle keep-alive clients (a browser's tabs), one slow
// request and one streaming response in flight. Then a shutdown, printed as it happens.
//   npm run demo
import http from 'node:http'
import diagnostics from 'node:diagnostics_channel'
import { graceful } from '@quiesce/core'

let t0 = 0
const clock = () => (t0 ? `+${String(Math.round(performance.now() - t0)).padStart(5)} ms` : '  before  ')
const say = (line) => console.log(`${clock()}  ${line}`)

const server = http.createServer((req, res) => {
  if (req.url === '/slow') return setTimeout(() => res.end('slow done\n'), 1500)
  if (req.url === '/stream') {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    let n = 0
    const timer = setInterval(() => {
      res.write(`tick ${++n}\n`)
      if (n === 6) {
        clearInterval(timer)
        res.end()
      }
    }, 300)
    return
  }
  res.end('hello\n')
})
server.keepAliveTimeout = 60_000 // a long keep-alive, as behind a load balancer: the drain must not wait for it

const g = graceful(server, {
  timeout: 5000,
  signals: false, // the demo calls shutdown() itself; a real server keeps the default (SIGINT, SIGTERM)
  logger: { info: (m) => say(m), warn: (m) => say(m), error: (m) => say(m) },
})

// watch the drain from the outside: every socket's close, every listener close
let socketNo = 0
server.on('connection', (socket) => {
  const id = ++socketNo
  socket.on('close', () => say(`socket #${id} closed`))
})
diagnostics.channel('quiesce:listener:close').subscribe(() => say('listener closed: new connections are refused'))

await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address()
console.log(`server on http://127.0.0.1:${port} (keepAliveTimeout 60 s)\n`)

// three idle keep-alive clients, like browser tabs that loaded a page and went quiet
const agents = [1, 2, 3].map(() => new http.Agent({ keepAlive: true }))
await Promise.all(agents.map((agent) => fetchText('/', agent)))
say('3 keep-alive clients idle')

// one slow request and one streaming response in flight
const slow = fetchText('/slow', new http.Agent({ keepAlive: true }), 'slow request')
const stream = fetchText('/stream', new http.Agent({ keepAlive: true }), 'stream')
await new Promise((r) => setTimeout(r, 200))

console.log('\n--- shutdown() ---')
t0 = performance.now()
const report = await g.shutdown()
await Promise.all([slow, stream])
await new Promise((r) => setImmediate(r)) // let the last socket's 'close' line print
console.log(
  `\nreport: ${JSON.stringify({ ok: report.ok, drainMs: report.drainMs, requestsCompleted: report.requestsCompleted, socketsClosedIdle: report.socketsClosedIdle, socketsForced: report.socketsForced })}`,
)
console.log('No request was cut, no keep-alive timeout was waited for. Bare server.close() would have left')
console.log('the streaming client on a keep-alive socket for 60 s; quiesce closed it once quiet for idleGrace (50 ms).')
process.exit(report.ok ? 0 : 1)

function fetchText(path, agent, label) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          body += d
          if (label === 'stream') say(`stream got: ${d.trim()}`)
        })
        res.on('end', () => {
          if (label) say(`${label} finished: ${res.statusCode}, Connection: ${res.headers.connection}`)
          resolve(body)
        })
      })
      .on('error', reject)
  })
}
