import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'

/**
 * A connected socket to 127.0.0.1 (or `host`): plain TCP, or TLS when `ca` is given (the test certificate;
 * checks stay on), offering `alpn` (`http/1.1` or `h2`).
 */
export async function openSocket(port: number, options: { host?: string; ca?: string; alpn?: string; allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  if (options.ca !== undefined) {
    const socket = tls.connect({
      port,
      host: options.host ?? '127.0.0.1',
      ca: options.ca,
      ALPNProtocols: options.alpn === undefined ? undefined : [options.alpn],
    })
    await once(socket, 'secureConnect')
    return socket
  }
  const socket = net.connect({
    port,
    host: options.host ?? '127.0.0.1',
    ...(options.allowHalfOpen === undefined ? {} : { allowHalfOpen: options.allowHalfOpen }),
  })
  await once(socket, 'connect')
  return socket
}

/**
 * What the byte-level test clients (HTTP/1.1 raw and streaming, HTTP/2 frames) share: the
 * bytes received so far, the times of the server's FIN and of the close, and waits woken by a
 * socket event, never by polling. A subclass parses `buffer` in `parse()`.
 */
export abstract class SocketClient {
  readonly socket: net.Socket
  /** performance.now() of the server's FIN / of the socket's close, or null. */
  endedAt: number | null = null
  closedAt: number | null = null
  error: NodeJS.ErrnoException | null = null
  /** The bytes received and not parsed yet. */
  protected buffer = Buffer.alloc(0)
  #waiters: Array<() => void> = []
  /** Whether a wait fails as soon as the socket has closed, rather than leaving it to the condition. */
  readonly #failOnClose: boolean
  readonly #noun: string

  protected constructor(socket: net.Socket, options: { failOnClose: boolean; noun?: string }) {
    this.socket = socket
    this.#failOnClose = options.failOnClose
    this.#noun = options.noun ?? 'socket'
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.parse()
      this.#wake()
    })
    socket.on('end', () => {
      this.endedAt = performance.now()
      this.#wake()
    })
    socket.on('error', (err) => {
      this.error = err
    })
    socket.on('close', () => {
      this.closedAt = performance.now()
      this.#wake()
    })
  }

  /** Reads what it can of `buffer`; called after every chunk, before any wait is woken. */
  protected abstract parse(): void

  write(data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Waits (woken by incoming bytes, FIN or close, never polling) until `cond` holds. */
  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms
    while (!cond()) {
      if (this.#failOnClose && this.closedAt !== null) throw new Error(`${this.#noun} closed before ${what}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((r) => this.#waiters.push(r)),
        new Promise((r) => {
          timer = setTimeout(r, left)
        }),
      ])
      clearTimeout(timer)
    }
  }

  async ended(ms?: number): Promise<number> {
    await this.until(() => this.endedAt !== null || this.closedAt !== null, 'FIN from the server', ms)
    return (this.endedAt ?? this.closedAt) as number
  }

  async closed(ms?: number): Promise<number> {
    await this.until(() => this.closedAt !== null, `${this.#noun} close`, ms)
    return this.closedAt as number
  }

  destroy(): void {
    this.socket.destroy()
  }

  #wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }
}

/** An HTTP/1.1 GET with keep-alive (the 1.1 default); `extra` is more header lines, each ending in CRLF. */
export function http1Get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`
}

/** The status and lower-cased headers of an HTTP/1.1 response head (without its blank line). */
export function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: Number((statusLine ?? '').split(' ')[1]), headers }
}
