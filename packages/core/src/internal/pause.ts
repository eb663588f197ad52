import type { AddressInfo } from 'node:net'
import { ResumeError } from '../errors.js'
import type { AnyServer, PauseMode } from '../types.js'
import { closeListenerOnly, formatAddress } from './servers.js'
import { now, type AnyRequest, type AnyResponse } from './site.js'

interface Held {
  readonly res: AnyResponse
  readonly until: number
  readonly resolve: (run: boolean) => void
}

/**
 * `pause({ mode })` and `resume()` (D13): `refuse` closes the listeners and listens again on the
 * same addresses; `reject` answers new requests 503; `hold` parks them until `resume()` or
 * `maxWait` (then 503).
 */
export class Pause {
  readonly mode: PauseMode
  readonly maxWait: number
  /** refuse: where each server listened, to listen there again. */
  readonly #addresses = new Map<AnyServer, AddressInfo | string>()
  #held: Held[] = []
  #holdTimer: NodeJS.Timeout | null = null
  readonly #reject503: (res: AnyResponse) => void

  constructor(mode: PauseMode, maxWait: number, servers: Iterable<AnyServer>, reject503: (res: AnyResponse) => void) {
    this.mode = mode
    this.maxWait = maxWait
    this.#reject503 = reject503
    if (mode !== 'refuse') return
    for (const server of servers) {
      const address = server.address()
      if (address === null || !server.listening) continue
      this.#addresses.set(server, address)
      closeListenerOnly(server)
    }
  }

  /** The gate while paused: true (refuse: served as usual), false (answered 503), or later (hold). */
  admit(_req: AnyRequest, res: AnyResponse): boolean | Promise<boolean> {
    if (this.mode === 'refuse') return true
    if (this.mode === 'reject') {
      this.#reject503(res)
      return false
    }
    return new Promise<boolean>((resolve) => {
      this.#held.push({ res, until: now() + this.maxWait, resolve })
      this.#armHoldTimer()
    })
  }

  /** Listens again where each server listened (refuse), then lets the held requests through. */
  async resume(retries: number): Promise<void> {
    for (const [server, address] of this.#addresses) {
      await listenAgain(server, address, retries)
      this.#addresses.delete(server)
    }
    this.release(true)
  }

  /** Every held request goes on (`run`) or not. */
  release(run: boolean): void {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer)
    this.#holdTimer = null
    const held = this.#held
    this.#held = []
    for (const h of held) h.resolve(run && !h.res.destroyed && !h.res.writableEnded)
  }

  #armHoldTimer(): void {
    if (this.#holdTimer !== null || this.#held.length === 0) return
    const first = this.#held[0] as Held
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = null
      const t = now()
      while (this.#held.length > 0 && (this.#held[0] as Held).until <= t) {
        const h = this.#held.shift() as Held
        if (!h.res.writableEnded && !h.res.destroyed) this.#reject503(h.res)
        h.resolve(false)
      }
      this.#armHoldTimer()
    }, Math.max(0, Math.ceil(first.until - now())))
  }
}

/** `resume()`: listen on the same address again, retrying EADDRINUSE with back-off (D13). */
async function listenAgain(server: AnyServer, address: AddressInfo | string, retries: number): Promise<void> {
  const args = typeof address === 'string' ? { path: address } : { port: address.port, host: address.address }
  let wait = 25
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          server.removeListener('listening', onListening)
          reject(err)
        }
        const onListening = (): void => {
          server.removeListener('error', onError)
          resolve()
        }
        server.once('error', onError)
        server.once('listening', onListening)
        server.listen(args)
      })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= retries) {
        throw new ResumeError(formatAddress(address), err)
      }
      await new Promise((resolve) => setTimeout(resolve, wait).unref())
      wait = Math.min(wait * 2, 1000)
    }
  }
}
