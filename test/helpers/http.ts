import diagnostics from 'node:diagnostics_channel'
import http from 'node:http'
import type http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'

export interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request to 127.0.0.1 (or `host`) on its own connection unless an agent is given, the whole body read. */
export function request(
  port: number,
  path: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; agent?: http.Agent; host?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: options.host ?? '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false },
      (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/** A GET, as `request()`. */
export function get(port: number, path = '/', options: { agent?: http.Agent; host?: string } = {}): Promise<Answer> {
  return request(port, path, options)
}

export interface H2Answer {
  status: number
  headers: http2.IncomingHttpHeaders
  body: string
}

/** One request on an existing HTTP/2 session, the whole body read; rejects with the stream's error, or when it ended without a response. */
export function h2request(client: http2.ClientHttp2Session, path: string, method = 'GET', body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':path': path, ':method': method })
    let headers: http2.IncomingHttpHeaders = {}
    let data = ''
    stream.setEncoding('utf8')
    stream.on('response', (h) => {
      headers = h
    })
    stream.on('data', (d: string) => {
      data += d
    })
    stream.on('end', () => {
      if (headers[':status'] === undefined) reject(new Error(`stream ended without a response (rstCode ${stream.rstCode})`))
      else resolve({ status: Number(headers[':status']), headers, body: data })
    })
    stream.on('error', reject)
    stream.end(body)
  })
}

/** performance.now() when quiesce publishes that `server`'s listener closed (`quiesce:listener:close`). */
export function listenerClosed(server: unknown): Promise<number> {
  return new Promise((resolve) => {
    const ch = diagnostics.channel('quiesce:listener:close')
    const on = (message: unknown): void => {
      if ((message as { server: unknown }).server !== server) return
      ch.unsubscribe(on)
      resolve(performance.now())
    }
    ch.subscribe(on)
  })
}

/** 'connected', or the error code of a connection attempt ('ECONNREFUSED' once a listener closed). */
export function connectOutcome(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host })
    s.on('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

/** A raw TCP connection the server has accepted (not one still waiting in the backlog) that never sends a byte. */
export async function acceptedSocket(server: net.Server, port: number): Promise<net.Socket> {
  const accepted = once(server, 'connection')
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await accepted
  return socket
}

/** Node's own diagnostics channel: fires when the server has parsed a request, before any listener (so before quiesce holds it). */
export function requestStarted(url: string): Promise<void> {
  return new Promise((resolve) => {
    const channel = diagnostics.channel('http.server.request.start')
    const on = (message: unknown): void => {
      if ((message as { request: http.IncomingMessage }).request.url !== url) return
      channel.unsubscribe(on)
      resolve()
    }
    channel.subscribe(on)
  })
}
