// NestJS 11 (platform-express) + @quiesce/core: Ctrl+C (or SIGTERM) drains, then Nest's shutdown
// hooks run once, after the in-flight requests have finished, and the process exits 0.
//   node examples/nestjs/server.mjs        then: curl localhost:3000/poll   and press Ctrl+C
//
// Plain JavaScript: Nest's decorators are applied as functions (what TypeScript emits for
// `@Controller()`, `@Get('poll')`, `@Req()`, `@Res()`), so this file runs without a build step. In a
// TypeScript Nest project only main.ts changes: the three lines marked "quiesce" below.
import 'reflect-metadata'
import { Controller, Get, Injectable, Module, Req, Res } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { graceful, requestSignal } from '@quiesce/core'

class AppController {
  hello() {
    return 'hello\n'
  }
  // readiness for a load balancer: 200, then 503 with Retry-After once the drain started
  ready(res) {
    if (g.ready) return 'ok'
    res.status(503).set('Retry-After', '1')
    return 'draining'
  }
  // a long-poll: waits for news, or ends early when the client leaves or the drain's deadline comes
  async poll(req) {
    const signal = requestSignal(req)
    const news = await waitForNews(signal)
    return news ?? { retry: true, reason: signal.reason?.code }
  }
}
Req()(AppController.prototype, 'poll', 0)
Res({ passthrough: true })(AppController.prototype, 'ready', 0)
for (const [method, path] of [
  ['hello', ''],
  ['ready', 'ready'],
  ['poll', 'poll'],
]) {
  Reflect.decorate([Get(path)], AppController.prototype, method, Object.getOwnPropertyDescriptor(AppController.prototype, method))
}
Reflect.decorate([Controller()], AppController)

class Database {
  onModuleDestroy() {
    console.log('Nest onModuleDestroy: closing the database pool…')
  }
  onApplicationShutdown() {
    console.log('Nest onApplicationShutdown')
  }
}
Reflect.decorate([Injectable()], Database)

class AppModule {}
Reflect.decorate([Module({ controllers: [AppController], providers: [Database] })], AppModule)

const app = await NestFactory.create(AppModule)
// no app.enableShutdownHooks(): quiesce owns SIGINT/SIGTERM
const g = graceful(app.getHttpServer(), { timeout: 10_000 }) // quiesce
g.onShutdown(() => app.close(), { name: 'nest', timeout: 5000 }) // quiesce: Nest's hooks, once, after the drain
await app.listen(Number(process.env.PORT ?? 3000), '0.0.0.0')
console.log(`listening on ${app.getHttpServer().address().port}`)

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
