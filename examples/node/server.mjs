// Bare node:http + @quiesce/core: Ctrl+C (or SIGTERM) drains, then exits 0.
//   node examples/node/server.mjs        then: curl localhost:3000/poll   and press Ctrl+C
import http from 'node:http'
import { graceful, requestSignal } from '@quiesce/core'

const server = http.createServer(async (req, res) => {
  if (req.url === '/ready') return g.readiness(req, res)
  if (req.url === '/poll') {
    const signal = requestSignal(req) // aborts on client close or at the drain's deadline
    const news = await waitForNews(signal)
    res.writeHead(signal.aborted ? 503 : 200, { 'Content-Type': 'application/json' })
    return res.end(JSON.stringify(news ?? { retry: true }))
  }
  res.end('hello\n')
})
const g = graceful(server, { timeout: 10_000 })
g.onShutdown(async () => console.log('closing the database pool…'), { name: 'db', timeout: 2000 })
server.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`))

function waitForNews(signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ news: 'nothing new' }), 3000)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve(null)
      },
      { once: true },
    )
  })
}
