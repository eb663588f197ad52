import { QuiesceOptionError } from '../errors.js'
import type { AnyServer } from '../types.js'
import { captureRejections, restoreRejections } from './node.js'
import type { AnyRequest, AnyResponse } from './site.js'

/**
 * quiesce's place in Node's own dispatch (D20). Node announces each request with
 * `server.emit('request' | 'checkContinue' | 'checkExpectation', req, res)`; an own `emit` on the
 * server tracks it and, on bare Node, runs the gate, then hands the event to the server's usual
 * emit — so the app's listeners stay the app's: added, prepended, removed, `once`, swapped or
 * taken over (socket.io) at any time, they run exactly as they would without quiesce. Every
 * other event passes straight through. With no live dispatcher (detached) it is a pass-through.
 */

/** What the dispatch calls: the server's tracker. */
export interface Dispatcher {
  dispatch(event: string | symbol, req: AnyRequest, res: AnyResponse): boolean
  /** A rejected promise from an async request listener (D11). */
  rejected(error: unknown, req: AnyRequest, res: AnyResponse): void
}

/** The live dispatcher of a server. `Symbol.for`: a second controller, or a second copy of quiesce, sees it (D20). */
const kDispatcher = Symbol.for('quiesce.tracker')
/** An own `emit` the server had before quiesce's (another library's wrapper): dispatch goes through it. */
const kEmitBase = Symbol.for('quiesce.emit-base')
const kRejection = Symbol.for('nodejs.rejection')

export type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean
type Dispatching = AnyServer & { [kDispatcher]?: Dispatcher; [kEmitBase]?: Emit; [kRejection]?: unknown; emit: Emit }

/** Node's request events: 'request', and the two it emits instead for `Expect:` requests (D21). */
function isRequestEvent(event: string | symbol): boolean {
  return event === 'request' || event === 'checkContinue' || event === 'checkExpectation'
}

/** The own emit the server had before quiesce's, if any (fixed once the dispatch is installed). */
export function ownBaseEmit(server: object): Emit | undefined {
  return (server as Dispatching)[kEmitBase]
}

/** The emit a server would use without quiesce: an own one set before us, else its class's (read at call time). */
function baseEmit(server: object): Emit {
  const s = server as Dispatching
  return s[kEmitBase] ?? (Object.getPrototypeOf(s) as { emit: Emit }).emit
}

function dispatchingEmit(this: Dispatching, event: string | symbol, req?: unknown, res?: unknown): boolean {
  const dispatcher = this[kDispatcher]
  if (dispatcher !== undefined && isRequestEvent(event)) return dispatcher.dispatch(event, req as AnyRequest, res as AnyResponse)
  // biome-ignore lint/complexity/noArguments: every argument passes through, without an array per event
  return Reflect.apply(baseEmit(this), this, arguments) as boolean
}

function onListenerRejection(this: Dispatching, error: unknown, event: string | symbol, req?: unknown, res?: unknown): void {
  const dispatcher = this[kDispatcher]
  if (dispatcher !== undefined && isRequestEvent(event)) {
    dispatcher.rejected(error, req as AnyRequest, res as AnyResponse)
    return
  }
  // any other event: what it would have been without the capture, an unhandled rejection
  void Promise.reject(error)
}

/** The dispatcher of `server`, if a controller drains it. */
export function dispatcherOf(server: object): Dispatcher | undefined {
  return (server as Dispatching)[kDispatcher]
}

/** D20: a second controller on one server would track every socket twice; the second is refused at its call. */
export function assertUndrained(server: object): void {
  if (dispatcherOf(server) !== undefined) {
    throw new QuiesceOptionError(
      'server',
      'a server no other quiesce controller drains (one graceful() per server: keep the controller the first call returned)',
      server,
    )
  }
}

/**
 * Puts the dispatch in place. With `captureListenerRejections` (bare Node's gate), a promise
 * rejected by an async 'request' listener comes back to `dispatcher.rejected` instead of becoming
 * an unhandled rejection. Returns the function that takes it all back.
 */
export function installDispatch(server: AnyServer, dispatcher: Dispatcher, captureListenerRejections: boolean): () => void {
  assertUndrained(server)
  const s = server as Dispatching
  s[kDispatcher] = dispatcher
  const ownEmit = Object.getOwnPropertyDescriptor(s, 'emit')
  // always an own property (undefined when there is none): a missing symbol would be looked up
  // along the server's whole prototype chain on every event
  s[kEmitBase] = ownEmit !== undefined && typeof ownEmit.value === 'function' ? (ownEmit.value as Emit) : undefined
  s.emit = dispatchingEmit as Emit
  const rejectionsBefore = captureListenerRejections ? captureRejections(s) : null
  if (captureListenerRejections) s[kRejection] = onListenerRejection
  return () => {
    if (s[kDispatcher] === dispatcher) delete s[kDispatcher]
    // another library may have wrapped our emit since: then ours stays, as a pass-through
    if (s.emit === dispatchingEmit) {
      if (ownEmit !== undefined) Object.defineProperty(s, 'emit', ownEmit)
      else delete (s as { emit?: unknown }).emit
      delete s[kEmitBase]
    }
    if (captureListenerRejections) {
      if (s[kRejection] === onListenerRejection) delete s[kRejection]
      restoreRejections(s, rejectionsBefore)
    }
  }
}
