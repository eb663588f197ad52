// A byte-level HTTP/1.1 client over node:net for the benchmarks and the contract scenarios:
// write exactly the bytes a scenario needs, see every response as it completes, and see when
// the server sends FIN, resets, or closes. Responses are parsed by Content-Length or chunked
// encoding (or read to FIN when neither is given).
import net from 'node:net'

/** Wall-clock milliseconds, sub-ms precision, comparable between processes on this machine. */
export const epoch = () => performance.timeOrigin + performance.now()

export class RawConn {
  /** @type {net.Socket} */
  socket
  /** @type {Array<{status:number, headers:Record<string,string>, body:string, at:number}>} */
  responses = []
  /** The response being read (headers seen, body incomplete), or null. */
  partial = null
  endedAt = null // server FIN
  closedAt = null
  /** @type {NodeJS.ErrnoException|null} */
  error = null
  #buf = Buffer.alloc(0)
  #waiters = new Set()
  #onResponse = null

  constructor(socket) {
    this.socket = socket
    socket.on('data', (chunk) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
      this.#parse()
      this.#wake()
    })
    socket.on('end', () => {
      this.endedAt ??= epoch()
      if (this.partial?.mode === 'eof') this.#finish()
      this.#wake()
    })
    socket.on('error', (err) => {
      this.error ??= err
    })
    socket.on('close', () => {
      this.closedAt = epoch()
      this.#wake()
    })
  }

  /** Resolves with a connection, or with `{ error }` when the connection is refused or reset. */
  static connect(port, { allowHalfOpen = false } = {}) {
    return new Promise((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen })
      socket.once('connect', () => {
        socket.removeListener('error', onError)
        resolve(new RawConn(socket))
      })
      const onError = (error) => resolve({ error })
      socket.once('error', onError)
    })
  }

  /** Called with each complete response (used by loops that send the next request at once). */
  onResponse(fn) {
    this.#onResponse = fn
  }

  write(text) {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(text)
  }

  get(path, extra = '') {
    this.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`)
  }

  get done() {
    return this.closedAt !== null
  }

  destroy() {
    this.socket.destroy()
  }

  /** Waits until `cond()` holds (re-checked on every socket event), the socket closes, or `ms` pass; resolves with `cond()`. */
  until(cond, ms) {
    if (cond()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const check = () => {
        if (!cond() && this.closedAt === null) return // a closed socket will never change again
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve(cond())
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        resolve(cond())
      }, ms)
      this.#waiters.add(check)
    })
  }

  #wake() {
    for (const w of [...this.#waiters]) w()
  }

  #finish() {
    const p = this.partial
    this.partial = null
    const res = { status: p.status, headers: p.headers, body: p.body, at: epoch() }
    this.responses.push(res)
    this.#onResponse?.(res)
  }

  #parse() {
    for (;;) {
      if (this.partial === null) {
        const end = this.#buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = this.#buf.subarray(0, end).toString('latin1').split('\r\n')
        this.#buf = this.#buf.subarray(end + 4)
        const status = Number(head[0].split(' ')[1])
        const headers = {}
        for (const line of head.slice(1)) {
          const i = line.indexOf(':')
          if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
        }
        let mode = 'eof'
        let remaining = 0
        if (status === 204 || status === 304 || (status >= 100 && status < 200)) mode = 'none'
        else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) mode = 'chunked'
        else if (headers['content-length'] !== undefined) {
          mode = 'length'
          remaining = Number(headers['content-length'])
        }
        this.partial = { status, headers, body: '', mode, remaining, chunks: 0 }
        if (mode === 'none' || (mode === 'length' && remaining === 0)) {
          this.#finish()
          continue
        }
      }
      const p = this.partial
      if (p.mode === 'eof') {
        p.body += this.#buf.toString('latin1')
        this.#buf = Buffer.alloc(0)
        return
      }
      if (p.mode === 'length') {
        const take = Math.min(p.remaining, this.#buf.length)
        p.body += this.#buf.subarray(0, take).toString('latin1')
        this.#buf = this.#buf.subarray(take)
        p.remaining -= take
        if (p.remaining > 0) return
        this.#finish()
        continue
      }
      // chunked: size line, data, CRLF; a zero-size chunk (and its trailer CRLF) ends the body
      const lineEnd = this.#buf.indexOf('\r\n')
      if (lineEnd < 0) return
      const size = parseInt(this.#buf.subarray(0, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        if (this.#buf.length < lineEnd + 4) return
        this.#buf = this.#buf.subarray(lineEnd + 4)
        this.#finish()
        continue
      }
      if (this.#buf.length < lineEnd + 2 + size + 2) return
      p.body += this.#buf.subarray(lineEnd + 2, lineEnd + 2 + size).toString('latin1')
      p.chunks++
      this.#buf = this.#buf.subarray(lineEnd + 2 + size + 2)
    }
  }
}

/** Opens `count` keep-alive connections, each having completed one `GET path`, `parallel` at a time. */
export async function openIdleConnections(port, count, { parallel = 200, path = '/' } = {}) {
  const conns = []
  let next = 0
  let failed = 0
  const lane = async () => {
    while (next < count) {
      next++
      const c = await RawConn.connect(port)
      if (c.error) {
        failed++
        continue
      }
      c.get(path)
      const ok = await c.until(() => c.responses.length === 1, 10_000)
      if (!ok) {
        failed++
        c.destroy()
        continue
      }
      conns.push(c)
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane))
  return { conns, failed }
}

/**
 * Keeps `count` connections busy: each sends its next `GET path` the moment the previous
 * response completes, and stops when a response says `Connection: close` (as any correct
 * client does). A request sent but never answered (reset, or FIN before the response) is a
 * failure.
 */
export async function busyClients(port, count, { parallel = 200, path = '/' } = {}) {
  const lanes = []
  const stats = { sent: 0, answered: 0, failed: 0, refused: 0, closeHeaders: 0 }
  let next = 0
  const open = async () => {
    while (next < count) {
      next++
      const c = await RawConn.connect(port)
      if (c.error) {
        stats.refused++
        continue
      }
      const lane = { conn: c, waiting: false, stopped: false }
      c.onResponse((res) => {
        lane.waiting = false
        stats.answered++
        if (/close/i.test(res.headers.connection ?? '')) {
          stats.closeHeaders++
          lane.stopped = true
          return
        }
        if (!lane.stopped) send()
      })
      const send = () => {
        if (c.endedAt !== null || c.closedAt !== null) {
          lane.stopped = true
          return
        }
        lane.waiting = true
        stats.sent++
        c.get(path)
      }
      c.socket.on('close', () => {
        if (lane.waiting) {
          stats.failed++
          lane.failed = true
        }
        lane.waiting = false
        lane.stopped = true
      })
      lanes.push(lane)
      send()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, open))
  return {
    stats,
    lanes,
    stop() {
      for (const l of lanes) {
        l.stopped = true
      }
    },
    destroy() {
      for (const l of lanes) l.conn.destroy()
    },
  }
}
