import { describe, expect, it } from 'vitest'
import { io, type Socket } from 'socket.io-client'
import type { Child } from '../helpers/child.js'
import { RawClient } from '../helpers/raw.js'
import { drain, once } from './drain.js'

/** A socket.io client on one transport that never reconnects during the test (but says it would). */
async function client(port: number, transport: 'websocket' | 'polling'): Promise<{ socket: Socket; left: Promise<{ reason: string; active: boolean }> }> {
  const socket = io(`http://127.0.0.1:${port}`, { transports: [transport], reconnectionDelay: 60_000, reconnectionDelayMax: 60_000 })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('connect_error', reject)
  })
  const left = new Promise<{ reason: string; active: boolean }>((resolve) => {
    socket.once('disconnect', (reason) => resolve({ reason, active: socket.active }))
  })
  return { socket, left }
}

/** A long-poll made by hand: handshake, CONNECT to the main namespace, then a poll the server holds. */
async function rawLongPoll(port: number, child: Child): Promise<RawClient> {
  const c = await RawClient.connect(port)
  c.get('/socket.io/?EIO=4&transport=polling')
  const open = await c.response()
  const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid
  c.post(`/socket.io/?EIO=4&transport=polling&sid=${sid}`, '40')
  expect((await c.response()).body).toBe('ok')
  c.get(`/socket.io/?EIO=4&transport=polling&sid=${sid}`)
  expect((await c.response()).body).toMatch(/^40\{"sid":/) // the CONNECT ack
  c.get(`/socket.io/?EIO=4&transport=polling&sid=${sid}`)
  await child.says(`mark io:poll:${sid}:2`) // held by the server: nothing to send until the next ping (25 s)
  return c
}

describe('socket.io 4', () => {
  for (const order of ['after', 'before'] as const)
    it(`attached ${order} graceful(server): HTTP routes, WebSocket and long-polling clients: the clients are told to leave at drain start ("transport close": they reconnect), the held poll is answered, io.close() runs once after the in-flight response, exit 0`, async () => {
      const sockets: Socket[] = []
      try {
        const {
          marks: m,
          exit,
          extra,
        } = await drain('socketio.mjs', {
          ...(order === 'before' ? { env: { IO_FIRST: '1' } } : {}),
          before: async (port, child) => {
            const ws = await client(port, 'websocket')
            const polling = await client(port, 'polling')
            sockets.push(ws.socket, polling.socket)
            await child.says(`mark io:poll:${polling.socket.io.engine.id}:2`)
            const raw = await rawLongPoll(port, child)
            return { ws: ws.left, polling: polling.left, raw }
          },
        })
        const { ws, polling, raw } = extra as {
          ws: Promise<{ reason: string; active: boolean }>
          polling: Promise<{ reason: string; active: boolean }>
          raw: RawClient
        }
        // socket.io's own reconnection is on for both: "transport close", not "io server disconnect"
        expect(await ws).toEqual({ reason: 'transport close', active: true })
        expect(await polling).toEqual({ reason: 'transport close', active: true })
        const held = raw.responses[3]!
        expect(held.status).toBe(200)
        expect(held.body).toBe('1') // engine.io's close packet
        expect(held.headers.connection).toBe('close')
        expect(raw.endedAt).not.toBeNull()
        expect(raw.error).toBeNull()
        const draining = once(m, 'quiesce:draining')
        const leave = once(m, 'io:leave')
        const finished = once(m, 'slow:finished')
        const closed = once(m, 'io:closed')
        expect(m.get('io:disconnect:forced-close')).toHaveLength(3)
        for (const t of m.get('io:disconnect:forced-close')!) {
          expect(t).toBeGreaterThan(leave)
          expect(t).toBeLessThan(finished)
        }
        expect(draining).toBeLessThanOrEqual(leave)
        expect(finished).toBeLessThan(closed)
        // nothing waited for the deadline
        expect(exit.stdout).toMatch(
          /quiesce: shutdown \(signal SIGTERM\) drained in \d{1,3} ms — \d+ requests completed, 0 aborted, 0 rejected — \d+ idle sockets? closed, 0 forced/,
        )
      } finally {
        for (const s of sockets) s.close()
      }
    })
})
