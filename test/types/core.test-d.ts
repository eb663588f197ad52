// The public types of @quiesce/core as a user imports them (the built declarations: `npm run build` first).
import http from 'node:http'
import http2 from 'node:http2'
import {
  ClientClosedError,
  type Controller,
  channels,
  graceful,
  type GracefulOptions,
  type GracefulServer,
  QuiesceError,
  type QuiesceErrorCode,
  requestSignal,
  type ServerController,
  ShutdownDeadlineError,
  type ShutdownReport,
  type State,
  type Stats,
} from '@quiesce/core'
import { type ClusterController, gracefulCluster, notifyReady } from '@quiesce/core/cluster'
import { listen, type TestServer } from '@quiesce/core/testing'
import { describe, expectTypeOf, it } from 'vitest'

describe('@quiesce/core', () => {
  it('graceful() takes every kind of node server and returns the controller with readiness routes', () => {
    expectTypeOf<http.Server>().toExtend<Parameters<typeof graceful>[0]>()
    expectTypeOf<http2.Http2SecureServer>().toExtend<Parameters<typeof graceful>[0]>()
    expectTypeOf(graceful(http.createServer())).toEqualTypeOf<GracefulServer>()
    expectTypeOf(graceful(http2.createServer())).toEqualTypeOf<GracefulServer>()
    expectTypeOf(graceful(http2.createSecureServer({}))).toEqualTypeOf<GracefulServer>()
    expectTypeOf<GracefulServer>().toExtend<ServerController>()
    expectTypeOf<ServerController>().toExtend<Controller>()
    expectTypeOf<GracefulServer['readiness']>().toBeFunction()
    // @ts-expect-error not a server
    graceful({})
  })

  it('options are checked', () => {
    expectTypeOf<GracefulOptions['timeout']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<GracefulOptions['duringDrain']>().toEqualTypeOf<'close' | 'reject' | undefined>()
    expectTypeOf<GracefulOptions['signals']>().toEqualTypeOf<readonly string[] | false | undefined>()
    // @ts-expect-error an unknown option
    graceful(http.createServer(), { timeuot: 1 })
    // @ts-expect-error timeout is a number
    graceful(http.createServer(), { timeout: '10s' })
  })

  it('the controller', () => {
    const g = graceful(http.createServer())
    expectTypeOf(g.state).toEqualTypeOf<State>()
    expectTypeOf<State>().toEqualTypeOf<'running' | 'paused' | 'draining' | 'closed'>()
    expectTypeOf(g.draining).toEqualTypeOf<AbortSignal>()
    expectTypeOf(g.ready).toEqualTypeOf<boolean>()
    expectTypeOf(g.stats()).toEqualTypeOf<Stats>()
    expectTypeOf(g.shutdown()).toEqualTypeOf<Promise<ShutdownReport>>()
    expectTypeOf(g.pause).returns.toEqualTypeOf<Promise<void>>()
    expectTypeOf(g.onShutdown(() => {})).toEqualTypeOf<() => void>()
    expectTypeOf(g.attach(http.createServer())).toEqualTypeOf<GracefulServer>()
    // @ts-expect-error state is read-only
    g.state = 'closed'
  })

  it('the report', () => {
    expectTypeOf<ShutdownReport['ok']>().toEqualTypeOf<boolean>()
    expectTypeOf<ShutdownReport['reason']>().toEqualTypeOf<'manual' | 'signal' | 'fatal' | 'framework'>()
    expectTypeOf<ShutdownReport['requestsCompleted']>().toEqualTypeOf<number>()
    expectTypeOf<ShutdownReport['forced']>().toBeArray()
  })

  it('requestSignal() is an AbortSignal for a request', () => {
    expectTypeOf<http.IncomingMessage>().toExtend<Parameters<typeof requestSignal>[0]>()
    expectTypeOf<http2.Http2ServerRequest>().toExtend<Parameters<typeof requestSignal>[0]>()
    expectTypeOf(requestSignal({} as http.IncomingMessage)).toEqualTypeOf<AbortSignal>()
  })

  it('errors carry their code', () => {
    expectTypeOf(new ClientClosedError()).toExtend<QuiesceError>()
    expectTypeOf(new ShutdownDeadlineError(1)).toExtend<Error>()
    expectTypeOf<QuiesceError['code']>().toEqualTypeOf<QuiesceErrorCode>()
    expectTypeOf<'ERR_QUIESCE_CLIENT_CLOSED'>().toExtend<QuiesceErrorCode>()
    expectTypeOf<'ERR_QUIESCE_NOPE'>().not.toExtend<QuiesceErrorCode>()
  })

  it('channels are diagnostics channels', () => {
    expectTypeOf(channels).toBeObject()
  })

  it('/cluster and /testing', () => {
    expectTypeOf(gracefulCluster()).toEqualTypeOf<ClusterController>()
    expectTypeOf(notifyReady()).toEqualTypeOf<boolean>()
    expectTypeOf(listen(http.createServer())).toEqualTypeOf<Promise<TestServer>>()
    expectTypeOf<TestServer['url']>().toEqualTypeOf<string>()
    expectTypeOf<TestServer>().toExtend<AsyncDisposable>()
  })
})
