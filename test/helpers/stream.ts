import type net from 'node:net'
import { http1Get, openSocket, parseHead, SocketClient } from './socket-client.js'

export interface StreamedResponse {
  status: number
  headers: Record<string, string>
  /** The body so far (de-chunked). */
  body: string
  /** The whole body arrived (terminating chunk, or Content-Length reached). */
  complete: boolean
  /** performance.now() when the head arrived, and when the body completed. */
  headAt: number
  doneAt: number | null
}

export interface SseEvent {
  event: string
  data: string
}

/**
 * A byte-level HTTP/1.1 client over `node:net` or `node:tls` that parses responses while they
 * stream (chunked or Content-Length), so a test can watch an SSE stream event by event and see
 * exactly when the server sends FIN. Every wait is woken by a socket event, never by polling.
 */
export class StreamClient extends SocketClient {
  readonly responses: StreamedResponse[] = []
  /** The response whose body is being read, and how much of it is still due. */
  #current: { res: StreamedResponse; chunked: boolean; left: number } | null = null

  private constructor(socket: net.Socket) {
    super(socket, { failOnClose: true })
  }

  /** Plain TCP, or TLS when `ca` is given (the test certificate; checks stay on). */
  static async connect(port: number, options: { ca?: string } = {}): Promise<StreamClient> {
    return new StreamClient(await openSocket(port, { ...options, alpn: 'http/1.1' }))
  }

  get(path: string, extra = ''): void {
    this.write(http1Get(path, extra))
  }

  /** Waits for the head of the n-th response (1-based). */
  async head(n: number, ms?: number): Promise<StreamedResponse> {
    await this.until(() => this.responses.length >= n, `head of response #${n}`, ms)
    return this.responses[n - 1] as StreamedResponse
  }

  /** Waits for the whole n-th response (1-based). */
  async response(n: number, ms?: number): Promise<StreamedResponse> {
    await this.until(() => this.responses[n - 1]?.complete === true, `response #${n}`, ms)
    return this.responses[n - 1] as StreamedResponse
  }

  /** The Server-Sent Events of the n-th response so far. */
  events(n = 1): SseEvent[] {
    return parseSse(this.responses[n - 1])
  }

  /** Waits until the n-th response has carried `count` events (or ended, or the socket closed). */
  async event(count: number, n = 1, ms?: number): Promise<SseEvent[]> {
    await this.until(() => this.events(n).length >= count || this.responses[n - 1]?.complete === true, `SSE event #${count}`, ms)
    return this.events(n)
  }

  protected parse(): void {
    for (;;) {
      if (this.#current === null) {
        const headEnd = this.buffer.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const { status, headers } = parseHead(this.buffer.subarray(0, headEnd).toString('latin1'))
        this.buffer = this.buffer.subarray(headEnd + 4)
        const res: StreamedResponse = { status, headers, body: '', complete: false, headAt: performance.now(), doneAt: null }
        this.responses.push(res)
        const chunked = headers['transfer-encoding'] === 'chunked'
        this.#current = { res, chunked, left: chunked ? 0 : Number(headers['content-length'] ?? 0) }
        if (!chunked && this.#current.left === 0) this.#finish()
        continue
      }
      const cur = this.#current
      if (!cur.chunked) {
        const take = this.buffer.subarray(0, cur.left)
        cur.res.body += take.toString()
        cur.left -= take.length
        this.buffer = this.buffer.subarray(take.length)
        if (cur.left === 0) {
          this.#finish()
          continue
        }
        return
      }
      const lineEnd = this.buffer.indexOf('\r\n')
      if (lineEnd === -1) return
      const size = parseInt(this.buffer.subarray(0, lineEnd).toString(), 16)
      if (this.buffer.length < lineEnd + 2 + size + 2) return
      cur.res.body += this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size).toString()
      this.buffer = this.buffer.subarray(lineEnd + 2 + size + 2)
      if (size === 0) this.#finish()
    }
  }

  #finish(): void {
    const cur = this.#current as { res: StreamedResponse }
    cur.res.complete = true
    cur.res.doneAt = performance.now()
    this.#current = null
  }
}

/** `event:` / `data:` blocks separated by a blank line (the EventSource format). */
export function parseSse(res: StreamedResponse | undefined): SseEvent[] {
  if (res === undefined) return []
  const events: SseEvent[] = []
  const blocks = res.body.split('\n\n')
  blocks.pop() // an incomplete block (or the empty rest after the last separator)
  for (const block of blocks) {
    let event = 'message'
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim()
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
    }
    if (data.length > 0 || event !== 'message') events.push({ event, data: data.join('\n') })
  }
  return events
}
