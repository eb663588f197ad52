import Koa, { type Context, type DefaultContext, type Middleware } from 'koa'
import type { ServerController } from '@quiesce/core'
import { graceful, type GracefulMiddleware, requestSignal } from '@quiesce/koa'
import { describe, expectTypeOf, it } from 'vitest'

describe('@quiesce/koa', () => {
  it('ctx.signal is merged into DefaultContext, read-only', () => {
    expectTypeOf<DefaultContext['signal']>().toEqualTypeOf<AbortSignal>()
    expectTypeOf<Context['signal']>().toEqualTypeOf<AbortSignal>()
    const app = new Koa()
    app.use(async (ctx) => {
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>()
      // @ts-expect-error ctx.signal is read-only
      ctx.signal = new AbortController().signal
    })
  })

  it('the middleware is also the controller', () => {
    const g = graceful({ timeout: 10_000 })
    expectTypeOf(g).toEqualTypeOf<GracefulMiddleware>()
    expectTypeOf(g).toExtend<Middleware>()
    expectTypeOf(g).toExtend<ServerController>()
    expectTypeOf(g.readiness).toExtend<Middleware>()
    new Koa().use(g)
  })

  it('requestSignal(ctx)', () => {
    expectTypeOf(requestSignal({} as Context)).toEqualTypeOf<AbortSignal>()
  })
})
