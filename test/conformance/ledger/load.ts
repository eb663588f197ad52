import diagnostics from 'node:diagnostics_channel'
import http from 'node:http'
import type { Socket } from 'node:net'
import { setTimeout as wait } from 'node:timers/promises'
import { Pool } from 'undici'

/**
 * The client half of the request ledger: keep-alive clients that never retry, each request
 * carrying an id, and one outcome logged per request (issue 10, part 2).
 */

export type Method = 'GET' | 'POST'
export type ClientKind = 'undici' | 'http.Agent'

export interface Outcome {
  readonly id: string
  readonly method: Method
  readonly client: ClientKind
  /** The request went out on a keep-alive socket that had already carried a request. */
  readonly reused: boolean
  /** performance.now() when the request was written to its socket; null if it never got one. */
  readonly writtenAt: number | null
  /** The client's previous request: on a reused socket, the one that went before on it. */
  readonly previousId: string | null
  /** performance.now() when the request was started. */
  readonly startedAt: number
  /** 'ok' = the expected answer; 'status' = an answer, but not the expected one; 'error' = no answer. */
  readonly result: 'ok' | 'status' | 'error'
  /** The error code ('ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'LOST', …) or the status. */
  readonly code: string
  /** The answer said `Connection: close`. */
  readonly connectionClose: boolean
}

export interface LoadOptions {
  readonly url: string
  /** Clients, half undici Pools (one connection each), half `http.Agent`s (one socket each). */
  readonly clients: number
  /** Think time between a client's requests: uniformly 0…maxThinkMs. */
  readonly maxThinkMs: number
  /** Request ids are `${prefix}-${client}-${n}`. */
  readonly prefix: string
  /** A request with no answer and no error after this long is logged as lost. */
  readonly lostAfterMs: number
}

/** What each route answers: the check that an answer is the expected one, byte for byte. */
export const pathFor = (method: Method, id: string): string => (method === 'GET' ? `/fast?id=${id}` : `/echo?id=${id}`)
const bodyFor = (id: string): string => `order ${id}`
const expected = (method: Method, id: string): string => (method === 'GET' ? 'fast' : `echo:${bodyFor(id).length}`)

/** The id in a request target such as `/echo?id=r1-7-12`, or null. */
export function idOf(target: string | undefined): string | null {
  const m = /[?&]id=([^&]+)/.exec(target ?? '')
  return m ? (m[1] as string) : null
}

/**
 * undici does not say whether a request went out on a reused socket, nor when; its diagnostics
 * channel does: count the requests each socket has carried when their headers are written.
 */
const undiciSends = new WeakMap<Socket, number>()
const undiciWrites = new Map<string, { reused: boolean; at: number }>()
diagnostics.subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: { path: string }; socket: Socket }
  const n = undiciSends.get(socket) ?? 0
  undiciSends.set(socket, n + 1)
  const id = idOf(request.path)
  if (id !== null) undiciWrites.set(id, { reused: n > 0, at: performance.now() })
})

type Sent = Omit<Outcome, 'id' | 'method' | 'client' | 'startedAt' | 'previousId'>

/** One keep-alive client: one connection, requests one after another. */
interface Client {
  readonly kind: ClientKind
  send(method: Method, id: string): Promise<Sent>
  close(): Promise<void>
}

function undiciClient(url: string, lostAfterMs: number): Client {
  // pipelining 1 and one connection: one keep-alive client, like a browser tab or a proxy lane
  const pool = new Pool(url, { connections: 1, pipelining: 1, headersTimeout: lostAfterMs, bodyTimeout: lostAfterMs })
  return {
    kind: 'undici',
    async send(method, id) {
      const written = (): { reused: boolean; writtenAt: number | null } => {
        const w = undiciWrites.get(id)
        return { reused: w?.reused ?? false, writtenAt: w?.at ?? null }
      }
      try {
        const res = await pool.request({
          method,
          path: pathFor(method, id),
          ...(method === 'POST' ? { body: bodyFor(id), headers: { 'content-type': 'text/plain' } } : {}),
        })
        const text = await res.body.text()
        const connectionClose = String(res.headers.connection ?? '').toLowerCase() === 'close'
        const ok = res.statusCode === 200 && text === expected(method, id)
        return { ...written(), result: ok ? 'ok' : 'status', code: String(res.statusCode), connectionClose }
      } catch (err) {
        const e = err as { code?: string; name?: string }
        const timedOut = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT'
        return { ...written(), result: 'error', code: timedOut ? 'LOST' : (e.code ?? e.name ?? 'error'), connectionClose: false }
      } finally {
        undiciWrites.delete(id)
      }
    },
    close: () => pool.destroy(),
  }
}

function agentClient(url: string, lostAfterMs: number): Client {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const { hostname, port } = new URL(url)
  return {
    kind: 'http.Agent',
    send(method, id) {
      return new Promise((resolve) => {
        const req = http.request({ host: hostname, port, method, path: pathFor(method, id), agent })
        let settled = false
        let writtenAt: number | null = null
        // a socket is assigned (a free keep-alive one, or a new one once connected) and the
        // buffered request is written to it in the same tick
        req.on('socket', () => {
          writtenAt = performance.now()
        })
        const settle = (o: Omit<Sent, 'reused' | 'writtenAt'>): void => {
          if (settled) return
          settled = true
          resolve({ ...o, reused: req.reusedSocket, writtenAt })
        }
        req.setTimeout(lostAfterMs, () => {
          settle({ result: 'error', code: 'LOST', connectionClose: false })
          req.destroy()
        })
        req.on('error', (err: NodeJS.ErrnoException) => settle({ result: 'error', code: err.code ?? err.message, connectionClose: false }))
        req.on('response', (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => {
            text += d
          })
          res.on('error', (err: NodeJS.ErrnoException) => settle({ result: 'error', code: err.code ?? err.message, connectionClose: false }))
          res.on('end', () => {
            const ok = res.statusCode === 200 && text === expected(method, id)
            settle({ result: ok ? 'ok' : 'status', code: String(res.statusCode), connectionClose: res.headers.connection === 'close' })
          })
        })
        if (method === 'POST') req.setHeader('content-type', 'text/plain')
        req.end(method === 'POST' ? bodyFor(id) : undefined)
      })
    },
    async close() {
      agent.destroy()
    },
  }
}

/**
 * Runs the clients until `stop()` (each finishes the request it is in), or, for one client, until
 * a connection of its is refused: it then knows the server is gone (a real client would retry
 * elsewhere — nothing was sent).
 */
export class Load {
  readonly outcomes: Outcome[] = []
  readonly #clients: Client[]
  readonly #loops: Promise<void>[]
  #stopped = false

  constructor(readonly options: LoadOptions) {
    this.#clients = Array.from({ length: options.clients }, (_, i) =>
      i % 2 === 0 ? undiciClient(options.url, options.lostAfterMs) : agentClient(options.url, options.lostAfterMs),
    )
    this.#loops = this.#clients.map((c, i) => this.#loop(c, i))
  }

  async #loop(client: Client, index: number): Promise<void> {
    let previousId: string | null = null
    for (let n = 0; !this.#stopped; n++) {
      const method: Method = Math.random() < 0.5 ? 'GET' : 'POST'
      const id = `${this.options.prefix}-${index}-${n}`
      const startedAt = performance.now()
      const o = await client.send(method, id)
      this.outcomes.push({ id, method, client: client.kind, startedAt, previousId, ...o })
      previousId = id
      if (o.code === 'ECONNREFUSED') return
      const think = Math.random() * this.options.maxThinkMs
      if (think >= 1) await wait(think)
    }
  }

  /** Stops sending; resolves when every client has its last outcome, and closes the clients. */
  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all(this.#loops)
    await Promise.all(this.#clients.map((c) => c.close()))
  }
}
