// Koa 3 + @quiesce/koa: Ctrl+C (or SIGTERM) drains, then exits 0.
//   node examples/koa/server.mjs        then: curl localhost:3000/poll   and press Ctrl+C
import Koa from 'koa'
import { graceful } from '@quiesce/koa'

const app = new Koa()
const g = graceful({ timeout: 10_000 })
app.use(g) // first

app.use(async (ctx) => {
  if (ctx.path === '/ready') return g.readiness(ctx, async () => {})
  if (ctx.path === '/poll') {
    // ctx.signal: aborts when the client leaves or at the drain's deadline
    const news = await waitForNews(ctx.signal)
    if (ctx.signal.aborted) {
      ctx.status = 503
      ctx.body = { retry: true, reason: ctx.signal.reason.code }
    } else {
      ctx.body = news
    }
    return
  }
  ctx.body = 'hello\n'
})

const server = app.listen(Number(process.env.PORT ?? 3000), () => console.log(`listening on ${server.address().port}`))
g.attach(server) // drains even if Ctrl+C comes before the first request (D17)

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
