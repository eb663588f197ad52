import type http2 from 'node:http2'
import https from 'node:https'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { generate } from 'selfsigned'
import type { AppLog } from '../conformance/fixtures/app.js'

export interface TestCertificate {
  /** PEM private key (server side). */
  readonly key: string
  /** PEM certificate: the server's, and the only CA its clients trust. */
  readonly cert: string
}

let pending: Promise<TestCertificate> | undefined

/**
 * A self-signed certificate for `localhost` and `127.0.0.1`, generated in memory on first use
 * (one per test process): nothing is committed, so nothing expires in the repository.
 * Clients pass `ca: cert` and connect to 127.0.0.1 with certificate checks left on.
 */
export function testCertificate(): Promise<TestCertificate> {
  pending ??= (async () => {
    const now = Date.now()
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 60 * 60 * 1000),
      notAfterDate: new Date(now + 24 * 60 * 60 * 1000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    })
    return { key: pems.private, cert: pems.cert }
  })()
  return pending
}

/**
 * Builds a server with the test certificate (`create`), gives an HTTPS one a 60 s
 * keepAliveTimeout, runs `before` (attach quiesce there), and listens on 127.0.0.1.
 * Clients pass `ca`.
 */
export async function listenSecure<S extends https.Server | http2.Http2SecureServer>(
  create: (certificate: TestCertificate) => S,
  before?: (server: S) => void,
): Promise<{ server: S; port: number; ca: string }> {
  const certificate = await testCertificate()
  const server = create(certificate)
  if (server instanceof https.Server) server.keepAliveTimeout = 60_000
  before?.(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, ca: certificate.cert }
}

/** What the Express and Koa middleware show the HTTPS tests. */
interface Middleware {
  attach(server: https.Server | http2.Http2SecureServer): unknown
  readonly state: string
  readonly servers: readonly unknown[]
  shutdown(options: { timeout: number }): Promise<unknown>
}

export interface SecureMiddlewareApp<G, S> extends AsyncDisposable {
  server: S
  g: G
  port: number
  ca: string
  log: AppLog
}

/**
 * An Express or Koa app (its `create` builds the server) behind the middleware `g` over TLS;
 * `g` is attached before the server listens (D17) unless `attach` is false.
 */
export async function startSecureMiddleware<G extends Middleware, S extends https.Server | http2.Http2SecureServer>(
  g: G,
  log: AppLog,
  create: (certificate: TestCertificate) => S,
  attach = true,
): Promise<SecureMiddlewareApp<G, S>> {
  const { server, port, ca } = await listenSecure(
    create,
    attach
      ? (s) => {
          g.attach(s)
        }
      : undefined,
  )
  return {
    server,
    g,
    log,
    port,
    ca,
    [Symbol.asyncDispose]: async () => {
      if (g.state !== 'closed' && g.servers.length > 0) await g.shutdown({ timeout: 200 })
      if (server.listening) server.close()
    },
  }
}
