// socket.io 4 on a node:http server + @quiesce/core: Ctrl+C (or SIGTERM) tells every socket.io
// client to reconnect elsewhere, lets the in-flight HTTP requests finish, then exits 0.
//   node examples/socket.io/server.mjs      then open http://localhost:3000 (two tabs) and press Ctrl+C
//
// - socket.io attaches after graceful(server), as its docs show: new Server(httpServer).
// - At drain start, io.engine.close() closes every engine.io connection: a WebSocket gets a close
//   frame, a long-poll that is waiting is answered. Clients see "transport close" and reconnect on
//   their own (to another instance behind the load balancer). io.disconnectSockets() would instead
//   send "io server disconnect", after which socket.io clients do NOT reconnect.
// - io.close() (socket.io's own cleanup: adapters, timers) runs once the server has closed.
import http from 'node:http'
import { Server } from 'socket.io'
import { graceful } from '@quiesce/core'

const page = `<!doctype html><meta charset="utf-8"><title>quiesce: socket.io</title>
<pre id="log"></pre><script src="/socket.io/socket.io.js"></script><script>
const log = (line) => { document.getElementById('log').textContent += new Date().toISOString() + ' ' + line + '\\n' }
const socket = io()
socket.on('connect', () => log('connected (' + socket.io.engine.transport.name + ')'))
socket.on('tick', (t) => log('tick ' + t))
socket.on('disconnect', (reason) => log('disconnected: ' + reason + (socket.active ? ', reconnecting…' : '')))
</script>`

const server = http.createServer((req, res) => {
  if (req.url === '/ready') return g.readiness(req, res) // 200, then 503 once draining
  if (req.url === '/poll') return void setTimeout(() => res.end('{"news":"nothing new"}\n'), 1000) // a slow request
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page)
})
const g = graceful(server, { timeout: 10_000 })
const io = new Server(server)
io.on('connection', (socket) => {
  const timer = setInterval(() => socket.emit('tick', Date.now()), 1000)
  socket.on('disconnect', (reason) => {
    clearInterval(timer)
    console.log(`socket.io client left: ${reason}`)
  })
})
g.beforeShutdown(() => io.engine.close(), { name: 'socket.io: tell clients to reconnect' })
g.onShutdown(() => new Promise((resolve) => io.close(() => resolve())), { name: 'socket.io' })
server.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`))
