/**
 * @quiesce/core/testing — start any app on an ephemeral port and stop it instantly, for
 * `afterEach` in vitest, jest or node:test. `close()` destroys every connection at once (tests
 * want speed, not a drain) and resolves when the server has emitted `close`: no keep-alive wait.
 *
 * ```ts
 * import { listen } from '@quiesce/core/testing'
 *
 * let app: Awaited<ReturnType<typeof listen>>
 * beforeEach(async () => { app = await listen(createApp()) })   // node server, handler, Express, Koa or Fastify
 * afterEach(() => app.close())
 * it('answers', async () => { expect((await fetch(`${app.url}/health`)).status).toBe(200) })
 * ```
 * @module
 */
import http from 'node:http'
import net from 'node:net'
import { QuiesceOptionError } from './errors.js'
import type { AnyServer } from './types.js'

/** A Fastify instance, as far as this helper needs one (no import of Fastify). */
interface FastifyLike {
  listen(options: { port: number; host: string }): Promise<string>
  close(): Promise<unknown>
  readonly server: AnyServer
  inject: unknown
}

/** A Koa app, as far as this helper needs one. */
interface KoaLike {
  callback(): http.RequestListener
}

export type TestableApp = AnyServer | http.RequestListener | KoaLike | FastifyLike

export interface TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` (or https for a TLS server) */
  readonly url: string
  readonly port: number
  readonly server: AnyServer
  /** Destroys every connection at once and resolves when the server has closed. Idempotent. */
  close(): Promise<void>
}

export interface ListenOptions {
  /** Default `127.0.0.1`. */
  host?: string
}

function isFastify(app: unknown): app is FastifyLike {
  return (
    typeof app === 'object' &&
    app !== null &&
    typeof (app as FastifyLike).listen === 'function' &&
    typeof (app as FastifyLike).inject === 'function' &&
    'server' in app
  )
}

function isKoa(app: unknown): app is KoaLike {
  return typeof app === 'object' && app !== null && typeof (app as KoaLike).callback === 'function'
}

/** Starts `app` on an ephemeral port: a node server, a request handler (Express apps are handlers), a Koa app, or a Fastify instance. */
export async function listen(app: TestableApp, options: ListenOptions = {}): Promise<TestServer> {
  const host = options.host ?? '127.0.0.1'
  if (isFastify(app)) {
    // sockets must be seen from the first one on: hook 'connection' before listening
    const tracked = track(app.server)
    await app.listen({ port: 0, host })
    return wrap(app.server, host, async () => {
      destroyAll(app.server, tracked)
      await app.close()
    })
  }
  let server: AnyServer
  if (app instanceof net.Server) server = app as AnyServer
  else if (isKoa(app)) server = http.createServer(app.callback())
  else if (typeof app === 'function') server = http.createServer(app as http.RequestListener)
  else throw new QuiesceOptionError('app', 'a node server, a request handler, an Express or Koa app, or a Fastify instance', app)
  const tracked = track(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      server.removeListener('error', reject)
      resolve()
    })
  })
  return wrap(server, host, async () => {
    if (!server.listening) {
      // closed already (or paused): Node would wait for a 'close' that has come and gone
      destroyAll(server, tracked)
      return
    }
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      destroyAll(server, tracked)
    })
  })
}

function track(server: AnyServer): Set<net.Socket> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return sockets
}

function destroyAll(server: AnyServer, sockets: Set<net.Socket>): void {
  for (const socket of sockets) socket.destroy()
  const s = server as http.Server
  if (typeof s.closeAllConnections === 'function') s.closeAllConnections()
}

function wrap(server: AnyServer, host: string, closeImpl: () => Promise<void>): TestServer {
  const address = server.address() as net.AddressInfo
  const tls = typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function'
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => (closing ??= closeImpl())
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost}:${address.port}`,
    port: address.port,
    server,
    close,
    [Symbol.asyncDispose]: close,
  }
}
