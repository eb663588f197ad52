import express, { type Request, type RequestHandler } from 'express'
import type { ServerController, ShutdownReport } from '@quiesce/core'
import { graceful, type GracefulMiddleware, requestSignal } from '@quiesce/express'
import { describe, expectTypeOf, it } from 'vitest'

describe('@quiesce/express', () => {
  it('the middleware is also the controller', () => {
    const g = graceful({ timeout: 10_000 })
    expectTypeOf(g).toEqualTypeOf<GracefulMiddleware>()
    expectTypeOf(g).toExtend<RequestHandler>()
    expectTypeOf(g).toExtend<ServerController>()
    expectTypeOf(g.readiness).toExtend<RequestHandler>()
    expectTypeOf(g.shutdown()).toEqualTypeOf<Promise<ShutdownReport>>()
    const app = express()
    app.use(g)
    app.get('/ready', g.readiness)
    // @ts-expect-error an unknown option
    graceful({ timeuot: 1 })
  })

  it('requestSignal(req)', () => {
    expectTypeOf(requestSignal({} as Request)).toEqualTypeOf<AbortSignal>()
  })
})
