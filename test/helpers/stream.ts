import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'

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
export class StreamClient {
  readonly socket: net.Socket
  readonly responses: StreamedResponse[] = []
  /** performance.now() of the server's FIN / of the socket's close, or null. */
  endedAt: number | null = null
  closedAt: number | null = null
  error: NodeJS.ErrnoException | null = null
  #buffer = Buffer.alloc(0)
  /** The response whose body is being read, and how much of it is still due. */
  #current: { res: StreamedResponse; chunked: boolean; left: number } | null = null
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

  /** Plain TCP, or TLS when `ca` is given (the test certificate; checks stay on). */
  static async connect(port: number, options: { ca?: string } = {}): Promise<StreamClient> {
    if (options.ca !== undefined) {
      const socket = tls.connect({ port, host: '127.0.0.1', ca: options.ca, ALPNProtocols: ['http/1.1'] })
      await once(socket, 'secureConnect')
      return new StreamClient(socket)
    }
    const socket = net.connect({ port, host: '127.0.0.1' })
    await once(socket, 'connect')
    return new StreamClient(socket)
  }

  get(path: string, extra = ''): void {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`)
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

  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms
    while (!cond()) {
      if (this.closedAt !== null) throw new Error(`socket closed before ${what}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([new Promise<void>((r) => this.#waiters.push(r)), new Promise((r) => { timer = setTimeout(r, left) })])
      clearTimeout(timer)
    }
  }

  #wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  #parse(): void {
    for (;;) {
      if (this.#current === null) {
        const headEnd = this.#buffer.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const [statusLine, ...lines] = this.#buffer.subarray(0, headEnd).toString('latin1').split('\r\n')
        this.#buffer = this.#buffer.subarray(headEnd + 4)
        const headers: Record<string, string> = {}
        for (const line of lines) {
          const i = line.indexOf(':')
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
        }
        const res: StreamedResponse = { status: Number((statusLine ?? '').split(' ')[1]), headers, body: '', complete: false, headAt: performance.now(), doneAt: null }
        this.responses.push(res)
        const chunked = headers['transfer-encoding'] === 'chunked'
        this.#current = { res, chunked, left: chunked ? 0 : Number(headers['content-length'] ?? 0) }
        if (!chunked && this.#current.left === 0) this.#finish()
        continue
      }
      const cur = this.#current
      if (!cur.chunked) {
        const take = this.#buffer.subarray(0, cur.left)
        cur.res.body += take.toString()
        cur.left -= take.length
        this.#buffer = this.#buffer.subarray(take.length)
        if (cur.left === 0) {
          this.#finish()
          continue
        }
        return
      }
      const lineEnd = this.#buffer.indexOf('\r\n')
      if (lineEnd === -1) return
      const size = parseInt(this.#buffer.subarray(0, lineEnd).toString(), 16)
      if (this.#buffer.length < lineEnd + 2 + size + 2) return
      cur.res.body += this.#buffer.subarray(lineEnd + 2, lineEnd + 2 + size).toString()
      this.#buffer = this.#buffer.subarray(lineEnd + 2 + size + 2)
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
