// Fastify 5 + @quiesce/fastify: Ctrl+C (or SIGTERM) drains, then exits 0.
//   node examples/fastify/server.mjs        then: curl localhost:3000/poll   and press Ctrl+C
import Fastify from 'fastify'
import { gracefulPlugin, liveness, readiness } from '@quiesce/fastify'

// return503OnClosing: false — requests on open keep-alive connections during the drain are served
// with Connection: close (D3), not answered 503 by Fastify's own default
const fastify = Fastify({ logger: true, return503OnClosing: false })
await fastify.register(gracefulPlugin, { timeout: 10_000 }) // first, before the routes and other plugins
fastify.get('/ready', readiness)
fastify.get('/live', liveness)

// a long-poll: waits for news, or ends early when the client leaves or the drain's deadline comes.
// request.quiesceSignal is quiesce's signal; request.signal stays Fastify's own.
fastify.get('/poll', async (request, reply) => {
  const signal = request.quiesceSignal
  const news = await waitForNews(signal)
  if (!signal.aborted) return news
  return reply.code(503).send({ retry: true, reason: signal.reason.code })
})
fastify.get('/', async () => 'hello\n')

// Fastify's own onClose hooks are part of the drain: they run once the server has closed, and the
// process exits only after them
fastify.addHook('onClose', async () => fastify.log.info('closing the database pool…'))

// `localhost` binds 127.0.0.1 and, where it resolves to it, ::1 too: both listeners drain
await fastify.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? 'localhost' })
console.log(`listening on ${fastify.server.address().port}`)

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
