import net from 'node:net'
import { once } from 'node:events'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** ms (performance.now()) when the last byte of this response arrived */
  at: number
}

/**
 * A byte-level HTTP/1.1 client over node:net: write exactly what you want, read responses as
 * they arrive, and see when the server sends FIN (`ended`) and when the socket closes.
 */
export class RawClient {
  readonly socket: net.Socket
  readonly responses: RawResponse[] = []
  /** performance.now() when the server's FIN arrived, or null. */
  endedAt: number | null = null
  closedAt: number | null = null
  error: NodeJS.ErrnoException | null = null
  #buffer = Buffer.alloc(0)
  #waiters: Array<() => void> = []

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#parse()
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

  static async connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false })
    await once(socket, 'connect')
    return new RawClient(socket)
  }

  write(text: string): void {
    this.socket.write(text)
  }

  /** A GET with keep-alive (HTTP/1.1 default). */
  get(path: string, extra = ''): void {
    this.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`)
  }

  post(path: string, body: string, extra = ''): void {
    this.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`)
  }

  #wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms
    while (!cond()) {
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([this.#changed(), new Promise((r) => { timer = setTimeout(r, left) })])
      clearTimeout(timer)
    }
  }

  /** Waits for the n-th response (1-based). */
  async response(n = this.responses.length + 1, ms?: number): Promise<RawResponse> {
    await this.until(() => this.responses.length >= n || this.closedAt !== null, `response #${n}`, ms)
    const r = this.responses[n - 1]
    if (r === undefined) throw new Error(`socket closed before response #${n} (got ${this.responses.length})`)
    return r
  }

  async ended(ms?: number): Promise<number> {
    await this.until(() => this.endedAt !== null || this.closedAt !== null, 'FIN from the server', ms)
    return (this.endedAt ?? this.closedAt) as number
  }

  async closed(ms?: number): Promise<number> {
    await this.until(() => this.closedAt !== null, 'socket close', ms)
    return this.closedAt as number
  }

  destroy(): void {
    this.socket.destroy()
  }

  #parse(): void {
    for (;;) {
      const headEnd = this.#buffer.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      const head = this.#buffer.subarray(0, headEnd).toString('latin1')
      const [statusLine, ...lines] = head.split('\r\n')
      const status = Number((statusLine ?? '').split(' ')[1])
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const i = line.indexOf(':')
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      let rest = this.#buffer.subarray(headEnd + 4)
      let body: string
      if (headers['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = []
        let off = 0
        for (;;) {
          const lineEnd = rest.indexOf('\r\n', off)
          if (lineEnd === -1) return
          const size = parseInt(rest.subarray(off, lineEnd).toString(), 16)
          if (rest.length < lineEnd + 2 + size + 2) return
          if (size === 0) {
            off = lineEnd + 4
            break
          }
          parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
          off = lineEnd + 2 + size + 2
        }
        body = Buffer.concat(parts).toString()
        rest = rest.subarray(off)
      } else {
        const len = Number(headers['content-length'] ?? 0)
        if (rest.length < len) return
        body = rest.subarray(0, len).toString()
        rest = rest.subarray(len)
      }
      this.#buffer = rest
      this.responses.push({ status, headers, body, at: performance.now() })
    }
  }
}
