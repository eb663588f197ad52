import { setCloseMarker } from './node.js'
import type { AnyResponse } from './site.js'

/** The `Retry-After` header's value for `retryAfter` seconds (whole seconds, rounded up). */
export const retryAfterHeader = (retryAfter: number): string => String(Math.ceil(retryAfter))

/** 503 with Retry-After; on HTTP/1 with `Connection: close` (the marker: quiesce closes the socket gracefully after it, D2, D3, D13). */
export function answer503(res: AnyResponse, retryAfter: number): void {
  if (res.headersSent || res.writableEnded) {
    if (!res.writableEnded) res.end()
    return
  }
  res.statusCode = 503
  res.setHeader('Retry-After', retryAfterHeader(retryAfter))
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  if ('maxRequestsOnConnectionReached' in res) setCloseMarker(res, true)
  res.end('Service Unavailable\n')
}

/** A handler failed (D11): 500 if nothing was sent yet; with the headers out, the only honest answer left is to cut this one response. */
export function answer500(res: AnyResponse): void {
  if (!res.headersSent && !res.writableEnded) {
    res.statusCode = 500
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.end('Internal Server Error\n')
  } else if (!res.writableEnded) {
    res.destroy()
  }
}
