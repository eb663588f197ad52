import type net from 'node:net'
import tls from 'node:tls'
import { openSocket, SocketClient } from './socket-client.js'

/** Frame types (RFC 9113 §6) this client reads or writes. */
export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const
const END_STREAM = 0x1
const ACK = 0x1
const END_HEADERS = 0x4

export interface Frame {
  type: number
  flags: number
  streamId: number
  payload: Buffer
  /** performance.now() when it arrived. */
  at: number
}

export interface Goaway {
  lastStreamId: number
  errorCode: number
  at: number
}

/** HPACK static-table indexes of `:status` (RFC 7541 Appendix A), for the statuses tests expect. */
const STATIC_STATUS: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 }

/**
 * A frame-level HTTP/2 client over `node:net` (h2c, prior knowledge) or `node:tls` (ALPN h2).
 * Unlike Node's client it obeys nothing it is not told to: it can hold back the PING ACK,
 * open a stream after a GOAWAY, and shows every frame the server sent, with its arrival time.
 * Requests are GETs without a body; header blocks use HPACK literals without indexing, so no
 * encoder state is needed. Server SETTINGS are acknowledged; PINGs only when `autoPingAck`.
 */
export class RawH2Client extends SocketClient {
  readonly frames: Frame[] = []
  autoPingAck: boolean

  private constructor(socket: net.Socket, autoPingAck: boolean) {
    super(socket, { failOnClose: true, noun: 'connection' })
    this.autoPingAck = autoPingAck
    // connection preface, then our (empty) SETTINGS
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    this.#send(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))
  }

  static async connect(port: number, options: { ca?: string; autoPingAck?: boolean } = {}): Promise<RawH2Client> {
    return new RawH2Client(await openSocket(port, { ca: options.ca, alpn: 'h2' }), options.autoPingAck ?? true)
  }

  /** Opens stream `streamId` (odd, increasing) with a GET for `path`, END_STREAM set. */
  get(streamId: number, path: string): void {
    const block = Buffer.concat([
      Buffer.from([0x82]), // :method GET (static index 2)
      Buffer.from([this.socket instanceof tls.TLSSocket ? 0x87 : 0x86]), // :scheme https / http
      literal(4, path), // :path
      literal(1, '127.0.0.1'), // :authority
    ])
    this.#send(FrameType.HEADERS, END_STREAM | END_HEADERS, streamId, block)
  }

  /** Acknowledges a PING the server sent (echoing its payload). */
  pingAck(ping: Frame): void {
    this.#send(FrameType.PING, ACK, 0, ping.payload)
  }

  goaways(): Goaway[] {
    return this.frames
      .filter((f) => f.type === FrameType.GOAWAY)
      .map((f) => ({ lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, errorCode: f.payload.readUInt32BE(4), at: f.at }))
  }

  /** PINGs the server sent (not ACKs of ours). */
  pings(): Frame[] {
    return this.frames.filter((f) => f.type === FrameType.PING && (f.flags & ACK) === 0)
  }

  /** What the server answered on a stream: status (for statically indexed ones), body, whether it ended, RST code. */
  stream(streamId: number): { status: number | null; body: string; ended: boolean; rstCode: number | null } {
    let status: number | null = null
    let body = ''
    let ended = false
    let rstCode: number | null = null
    for (const f of this.frames) {
      if (f.streamId !== streamId) continue
      if (f.type === FrameType.HEADERS) status ??= STATIC_STATUS[f.payload[0] as number] ?? -1
      if (f.type === FrameType.DATA) body += f.payload.toString()
      if ((f.type === FrameType.HEADERS || f.type === FrameType.DATA) && (f.flags & END_STREAM) !== 0) ended = true
      if (f.type === FrameType.RST_STREAM) rstCode = f.payload.readUInt32BE(0)
    }
    return { status, body, ended, rstCode }
  }

  #send(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.socket.destroyed) return
    const head = Buffer.alloc(9)
    head.writeUIntBE(payload.length, 0, 3)
    head[3] = type
    head[4] = flags
    head.writeUInt32BE(streamId & 0x7fffffff, 5)
    this.socket.write(Buffer.concat([head, payload]))
  }

  protected parse(): void {
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3)
      if (this.buffer.length < 9 + length) return
      const frame: Frame = {
        type: this.buffer[3] as number,
        flags: this.buffer[4] as number,
        streamId: this.buffer.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buffer.subarray(9, 9 + length)),
        at: performance.now(),
      }
      this.buffer = this.buffer.subarray(9 + length)
      this.frames.push(frame)
      if (frame.type === FrameType.SETTINGS && (frame.flags & ACK) === 0) this.#send(FrameType.SETTINGS, ACK, 0, Buffer.alloc(0))
      if (frame.type === FrameType.PING && (frame.flags & ACK) === 0 && this.autoPingAck) this.pingAck(frame)
    }
  }
}

/** HPACK "literal header field without indexing — indexed name" (RFC 7541 §6.2.2), no Huffman. */
function literal(nameIndex: number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1')
  if (nameIndex > 14 || v.length > 126) throw new Error('literal(): index or value too long for this minimal encoder')
  return Buffer.concat([Buffer.from([nameIndex, v.length]), v])
}
