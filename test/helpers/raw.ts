import type net from 'node:net'
import { http1Get, openSocket, parseHead, SocketClient } from './socket-client.js'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** ms (performance.now()) when the last byte of this response arrived */
  at: number
}

/**
 * A byte-level HTTP/1.1 client over node:net: write exactly what you want, read responses as
 * they arrive, and see when the server sends FIN (`ended`) and when the socket closes. Its waits
 * end at the close and leave the verdict to the condition (`response()` then says what is missing).
 */
export class RawClient extends SocketClient {
  readonly responses: RawResponse[] = []

  private constructor(socket: net.Socket) {
    super(socket, { failOnClose: false })
  }

  static async connect(port: number, options: { host?: string; allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    return new RawClient(await openSocket(port, { host: options.host, allowHalfOpen: options.allowHalfOpen ?? false }))
  }

  /** A GET with keep-alive (HTTP/1.1 default). */
  get(path: string, extra = ''): void {
    this.write(http1Get(path, extra))
  }

  post(path: string, body: string, extra = ''): void {
    this.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`)
  }

  /** Waits for the n-th response (1-based). */
  async response(n = this.responses.length + 1, ms?: number): Promise<RawResponse> {
    await this.until(() => this.responses.length >= n || this.closedAt !== null, `response #${n}`, ms)
    const r = this.responses[n - 1]
    if (r === undefined) throw new Error(`socket closed before response #${n} (got ${this.responses.length})`)
    return r
  }

  /** Whole responses only: a chunked body is read once its terminating chunk is in. */
  protected parse(): void {
    for (;;) {
      const headEnd = this.buffer.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      const { status, headers } = parseHead(this.buffer.subarray(0, headEnd).toString('latin1'))
      let rest = this.buffer.subarray(headEnd + 4)
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
      this.buffer = rest
      this.responses.push({ status, headers, body, at: performance.now() })
    }
  }
}
