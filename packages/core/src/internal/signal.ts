import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { ClientClosedError, QuiesceOptionError } from '../errors.js'
import type { NodeRequest } from '../types.js'

/**
 * The per-request AbortController, kept on the request (HTTP/1) or the stream (HTTP/2) under a
 * `Symbol.for` key so that an ESM and a CommonJS copy of quiesce see the same one. Created only
 * when asked for (D15); the tracker aborts it on client close (D10) and at the deadline (D6).
 */
const kSignal = Symbol.for('quiesce.request-signal')

type Carrier = { [kSignal]?: AbortController }

function isH2Compat(req: object): req is Http2ServerRequest {
  return 'stream' in req && typeof (req as { stream?: unknown }).stream === 'object' && (req as Http2ServerRequest).httpVersionMajor === 2
}

function isStream(req: object): req is ServerHttp2Stream {
  return 'session' in req && 'respond' in req
}

/** The object a request's signal lives on: the stream for HTTP/2, the request itself for HTTP/1. */
function signalCarrier(req: NodeRequest): (IncomingMessage | ServerHttp2Stream) & Carrier {
  if (isStream(req)) return req as ServerHttp2Stream & Carrier
  if (isH2Compat(req)) return req.stream as ServerHttp2Stream & Carrier
  return req as IncomingMessage & Carrier
}

/**
 * The request's AbortSignal (D6, D10): it aborts with a `ClientClosedError` when the client
 * disconnects before the response finished, and with a `ShutdownDeadlineError` when the drain
 * reaches its deadline while the request still runs. Created lazily: a request that never asks
 * costs nothing. This is quiesce's own signal; Node ≥ 24's `req.signal` and Fastify's
 * `request.signal` are left as they are.
 */
export function requestSignal(req: NodeRequest): AbortSignal {
  if (typeof req !== 'object' || req === null) {
    throw new QuiesceOptionError('request', "node's IncomingMessage, an Http2ServerRequest or an Http2 stream", req)
  }
  const carrier = signalCarrier(req)
  let controller = carrier[kSignal]
  if (controller === undefined) {
    controller = new AbortController()
    carrier[kSignal] = controller
    if (isGone(carrier)) controller.abort(new ClientClosedError())
    else if (!isTracked(carrier)) watchUntracked(carrier, controller)
  }
  return controller.signal
}

/** Aborts the request's signal if one was created and is not aborted yet. */
export function abortRequestSignal(carrier: object, reason: () => Error): void {
  const controller = (carrier as Carrier)[kSignal]
  if (controller !== undefined && !controller.signal.aborted) controller.abort(reason())
}

/** `http2.constants.NGHTTP2_NO_ERROR`: the RST code of a stream that ended normally. */
const NGHTTP2_NO_ERROR = 0

/**
 * An HTTP/2 stream that closed before its response went out whole: its client reset it, or its
 * session died. `writableFinished` alone cannot tell: Node sets it on a reset stream too.
 */
export function streamCutShort(stream: ServerHttp2Stream): boolean {
  return !stream.writableFinished || stream.aborted || (stream.rstCode !== undefined && stream.rstCode !== NGHTTP2_NO_ERROR)
}

const kTracked = Symbol.for('quiesce.socket')
const kTrackedSession = Symbol.for('quiesce.session')

function isGone(carrier: object): boolean {
  if (isStream(carrier)) return carrier.destroyed && streamCutShort(carrier)
  const socket = (carrier as IncomingMessage).socket as Socket | null
  return socket === null || socket.destroyed
}

function isTracked(carrier: object): boolean {
  if (isStream(carrier)) return (carrier.session as { [kTrackedSession]?: unknown } | undefined)?.[kTrackedSession] !== undefined
  const socket = (carrier as IncomingMessage).socket as (Socket & { [kTracked]?: unknown }) | null
  return socket?.[kTracked] !== undefined
}

/**
 * A request on a server quiesce does not track: fall back to the request's own `close`, which is
 * reliable for a client that leaves mid-request but fires early once a body was consumed (Node's
 * behaviour), so the README asks for `graceful()` to be attached.
 */
function watchUntracked(carrier: object, controller: AbortController): void {
  if (isStream(carrier)) {
    carrier.once('close', () => {
      if (streamCutShort(carrier) && !controller.signal.aborted) controller.abort(new ClientClosedError())
    })
    return
  }
  const req = carrier as IncomingMessage
  req.once('close', () => {
    if (req.socket?.destroyed && !controller.signal.aborted) controller.abort(new ClientClosedError())
  })
}
