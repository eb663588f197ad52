// WebSockets and Server-Sent Events + @quiesce/core: Ctrl+C (or SIGTERM) tells every long-lived
// connection to leave, then exits 0.
//   node examples/websocket-sse/server.mjs      then open http://localhost:3000 and press Ctrl+C
//
// - SSE (/events): each stream listens on `g.draining`; when the drain starts it sends a last
//   event and ends, so EventSource clients reconnect (to another instance) at once.
// - WebSocket (/ws): `closeUpgraded` is called once for every upgraded socket when the listener
//   closes; we close its WebSocket with 1001 Going Away. One still open at the deadline is destroyed.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { graceful } from '@quiesce/core'

const page = `<!doctype html><meta charset="utf-8"><title>quiesce: WebSocket + SSE</title>
<pre id="log"></pre><script>
const log = (line) => { document.getElementById('log').textContent += line + '\\n' }
const events = new EventSource('/events')
events.onmessage = (e) => log('sse: ' + e.data)
events.addEventListener('bye', (e) => log('sse bye: ' + e.data))
const ws = new WebSocket('ws://' + location.host + '/ws')
ws.onmessage = (e) => log('ws: ' + e.data)
ws.onclose = (e) => log('ws closed: ' + e.code + ' ' + e.reason)
</script>`

const server = http.createServer((req, res) => {
  if (req.url === '/events') return serveEvents(req, res)
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page)
})

function serveEvents(req, res) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' })
  res.write(`event: hello\ndata: connected\n\n`)
  const timer = setInterval(() => res.write(`data: ${new Date().toISOString()}\n\n`), 1000)
  // one listener per stream on the controller's signal, removed when the stream ends
  // (never AbortSignal.any([g.draining, …]) per request: it leaks on Node 20–24)
  const bye = () => {
    clearInterval(timer)
    res.end(`event: bye\ndata: server restarting\nretry: 1000\n\n`)
  }
  g.draining.addEventListener('abort', bye, { once: true })
  res.on('close', () => {
    clearInterval(timer)
    g.draining.removeEventListener('abort', bye)
  })
}

// WebSockets: the application owns 'upgrade' (quiesce never listens to it); it remembers which
// WebSocket lives on which socket, so that closeUpgraded(socket) can close it politely
const wss = new WebSocketServer({ noServer: true })
const sockets = new WeakMap()
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws' || g.draining.aborted) {
    // not ours, or a new WebSocket during the drain: ask the client to come back (elsewhere)
    socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.set(socket, ws)
    ws.send('welcome')
    ws.on('message', (data) => ws.send(`echo: ${data}`))
  })
})

const g = graceful(server, {
  timeout: 10_000,
  closeUpgraded: (socket) => sockets.get(socket)?.close(1001, 'server restarting'),
})
g.onShutdown(() => wss.close(), { name: 'websocket server' })

server.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`))
