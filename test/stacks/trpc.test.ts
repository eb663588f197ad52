import { describe, expect, it } from 'vitest'
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client'
import WebSocket from 'ws'
import { drain, once } from './drain.js'

describe('tRPC 11 standalone server + WebSocket subscription', () => {
  it("the query in flight completes with Connection: close, the subscription's WebSocket is closed with 1001 when the listener closes, exit 0", async () => {
    let ws: ReturnType<typeof createWSClient> | undefined
    try {
      const { marks, exit, slow, extra } = await drain('trpc.mjs', {
        before: async (port) => {
          let closed!: (code: number | undefined) => void
          const close = new Promise<number | undefined>((resolve) => {
            closed = resolve
          })
          ws = createWSClient({ url: `ws://127.0.0.1:${port}`, WebSocket: WebSocket as never, onClose: (cause) => closed(cause?.code) })
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const trpc = createTRPCClient<any>({ links: [wsLink({ client: ws })] }) as any
          const data = new Promise((resolve, reject) => {
            trpc.ticks.subscribe(undefined, { onData: resolve, onError: reject })
          })
          expect(await data).toBe('hello')
          return { close } // (an object: a promise returned here would be awaited)
        },
      })
      expect(JSON.parse(slow.body)).toEqual({ result: { data: 'slow done' } })
      expect(await (extra as { close: Promise<number | undefined> }).close).toBe(1001)
      const finished = once(marks, 'slow:finished')
      const leave = once(marks, 'trpc:ws:leave')
      expect(once(marks, 'quiesce:draining')).toBeLessThanOrEqual(leave)
      expect(once(marks, 'trpc:subscription:ended')).toBeGreaterThan(leave)
      expect(leave).toBeLessThan(finished)
      expect(exit.stdout).toMatch(
        /quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed, 0 aborted, 0 rejected — 1 idle socket closed, 0 forced — hooks: wss ok/,
      )
    } finally {
      ws?.close()
    }
  })
})
