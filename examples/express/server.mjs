// Express 5 + @quiesce/express: Ctrl+C (or SIGTERM) drains, then exits 0.
//   node examples/express/server.mjs        then: curl localhost:3000/poll   and press Ctrl+C
import express from 'express'
import { graceful, requestSignal } from '@quiesce/express'

const app = express()
const g = graceful({ timeout: 10_000 })
app.use(g) // first, before the routes
app.get('/ready', g.readiness)
app.get('/live', g.liveness)

// a long-poll: waits for news, or ends early when the client leaves or the drain's deadline comes
app.get('/poll', async (req, res) => {
  const signal = requestSignal(req)
  const news = await waitForNews(signal)
  if (!signal.aborted) res.json(news)
  else if (!res.destroyed) res.status(503).json({ retry: true, reason: signal.reason.code })
})
app.get('/', (_req, res) => {
  res.send('hello\n')
})

const server = app.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`))
g.attach(server) // drains even if Ctrl+C comes before the first request (D17)
g.onShutdown(async () => console.log('closing the database pool…'), { name: 'db', timeout: 2000 })

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
