import type { AddressInfo } from 'node:net'
import { ClosedError, ResumeError } from '../errors.js'
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

  /** A server attached while paused: with `refuse`, it stops taking connections too. */
  adopt(server: AnyServer): void {
    if (this.mode !== 'refuse' || this.#addresses.has(server)) return
    const address = server.address()
    if (address === null || !server.listening) return
    this.#addresses.set(server, address)
    closeListenerOnly(server)
  }

  /**
   * Listens again where each server listened (refuse), then lets the held requests through. A
   * drain that started meanwhile owns the listeners: one reopened under it is closed again.
   */
  async resume(retries: number, draining: () => boolean): Promise<void> {
    for (const [server, address] of this.#addresses) {
      if (draining()) return
      await listenAgain(server, address, retries)
      this.#addresses.delete(server)
      if (draining()) closeListenerOnly(server)
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
    this.#holdTimer = setTimeout(
      () => {
        this.#holdTimer = null
        const t = now()
        while (this.#held.length > 0 && (this.#held[0] as Held).until <= t) {
          const h = this.#held.shift() as Held
          if (!h.res.writableEnded && !h.res.destroyed) this.#reject503(h.res)
          h.resolve(false)
        }
        this.#armHoldTimer()
      },
      Math.max(0, Math.ceil(first.until - now())),
    )
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
      // a ref'd timer: a resume under way keeps the process alive, as the listen it retries will (D13)
      await new Promise((resolve) => setTimeout(resolve, wait))
      wait = Math.min(wait * 2, 1000)
    }
  }
}

export interface PauseHost {
  readonly servers: Iterable<AnyServer>
  /** Draining has started: pause() and resume() are refused then. */
  readonly draining: boolean
  reject503(res: AnyResponse): void
  /** The phase follows: paused, or running again. */
  changed(paused: boolean): void
}

/** The controller's `pause()` / `resume()`: one change at a time, in call order (D13). */
export class PauseSwitch {
  #current: Pause | null = null
  #chain: Promise<void> = Promise.resolve()
  readonly #host: PauseHost

  constructor(host: PauseHost) {
    this.#host = host
  }

  get current(): Pause | null {
    return this.#current
  }

  pause(mode: PauseMode, maxWait: number): Promise<void> {
    return this.#serialise('pause()', async () => {
      if (this.#current !== null) {
        if (this.#current.mode === mode && this.#current.maxWait === maxWait) return
        await this.#resumeNow(10)
        // the drain started while the previous pause ended: it owns the server now
        if (this.#host.draining) throw new ClosedError('pause()')
      }
      this.#current = new Pause(mode, maxWait, this.#host.servers, (res) => this.#host.reject503(res))
      this.#host.changed(true)
    })
  }

  resume(retries: number): Promise<void> {
    return this.#serialise('resume()', () => this.#resumeNow(retries))
  }

  /** The drain starts: held requests go on, and there is no pause any more. */
  end(): void {
    this.#current?.release(true)
    this.#current = null
  }

  #serialise(what: string, fn: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#host.draining) throw new ClosedError(what)
      await fn()
    }
    const next = this.#chain.then(run, run)
    this.#chain = next.catch(() => {})
    return next
  }

  async #resumeNow(retries: number): Promise<void> {
    const pause = this.#current
    if (pause === null) return
    await pause.resume(retries, () => this.#host.draining)
    if (this.#current !== pause) return
    this.#current = null
    this.#host.changed(false)
  }
}
