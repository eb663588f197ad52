/**
 * Errors carry a stable `code` (`ERR_QUIESCE_*`) and, where there is one, a `cause`.
 *
 * Every quiesce error is branded with a `Symbol.for` key, so `instanceof QuiesceError`
 * holds even when the ESM and the CommonJS copy of this package are both loaded.
 */
const brand = Symbol.for('quiesce.error')

export type QuiesceErrorCode =
  | 'ERR_QUIESCE_CLIENT_CLOSED'
  | 'ERR_QUIESCE_SHUTDOWN_DEADLINE'
  | 'ERR_QUIESCE_INVALID_OPTION'
  | 'ERR_QUIESCE_RESUME_FAILED'
  | 'ERR_QUIESCE_HOOK_FAILED'
  | 'ERR_QUIESCE_HOOK_TIMEOUT'
  | 'ERR_QUIESCE_RESPONSE_DESTROYED'
  | 'ERR_QUIESCE_CLOSED'
  | 'ERR_QUIESCE_DRAINING'

function isBranded(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { [brand]?: unknown })[brand] === true
}

export class QuiesceError extends Error {
  declare readonly code: QuiesceErrorCode
  declare readonly [brand]: true

  constructor(code: QuiesceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    Object.defineProperty(this, 'code', { value: code, enumerable: true })
    Object.defineProperty(this, brand, { value: true })
    this.name = new.target.name
  }

  /**
   * `instanceof` by brand: the base accepts every quiesce error (the option TypeError
   * included); a subclass accepts errors carrying its static `code`.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (!isBranded(value)) return false
    const code = (this as { code?: string }).code
    return code === undefined || (value as { code?: string }).code === code
  }
}

/** The request's client went away before its response finished (D10). */
export class ClientClosedError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_CLIENT_CLOSED'
  constructor() {
    super('ERR_QUIESCE_CLIENT_CLOSED', 'client closed the connection before the response finished')
  }
}

/**
 * The server destroyed the response before it finished — the handler's own `res.destroy()`, a
 * server timeout — not its client, and not the drain's deadline.
 */
export class ResponseDestroyedError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_RESPONSE_DESTROYED'
  constructor() {
    super('ERR_QUIESCE_RESPONSE_DESTROYED', 'the response was destroyed by the server before it finished')
  }
}

/** The drain reached its `timeout` while the request was still running (D6). */
export class ShutdownDeadlineError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_SHUTDOWN_DEADLINE'
  constructor(timeout: number) {
    super('ERR_QUIESCE_SHUTDOWN_DEADLINE', `shutdown deadline: the drain's ${timeout} ms timeout ran out`)
  }
}

/** The reason of the controller's `draining` signal: draining has started. */
export class DrainingError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_DRAINING'
  constructor(reason: string) {
    super('ERR_QUIESCE_DRAINING', `draining started (${reason})`)
  }
}

/** `pause()` or `resume()` called once draining started: the server is going away. */
export class ClosedError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_CLOSED'
  constructor(what: string) {
    super('ERR_QUIESCE_CLOSED', `${what}: the server is draining or closed`)
  }
}

/** `resume()` could not listen again on the address the server had. */
export class ResumeError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_RESUME_FAILED'
  readonly address: string
  constructor(address: string, cause: unknown) {
    super('ERR_QUIESCE_RESUME_FAILED', `resume(): could not listen again on ${address}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.address = address
  }
}

/** A cleanup hook threw, rejected or ran past its limit (D8). Reported, never thrown at the caller. */
export class HookError extends QuiesceError {
  static readonly code = 'ERR_QUIESCE_HOOK_FAILED'
  readonly hook: string
  constructor(hook: string, timedOut: boolean, message: string, cause?: unknown) {
    super(timedOut ? 'ERR_QUIESCE_HOOK_TIMEOUT' : 'ERR_QUIESCE_HOOK_FAILED', message, cause === undefined ? undefined : { cause })
    this.hook = hook
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    const code = isBranded(value) ? (value as { code?: string }).code : undefined
    return code === 'ERR_QUIESCE_HOOK_FAILED' || code === 'ERR_QUIESCE_HOOK_TIMEOUT'
  }
}

/**
 * Bad input (D14). A real `TypeError`, so `err instanceof TypeError` holds, and branded, so
 * `err instanceof QuiesceError` holds too. `option` names what was wrong.
 */
export class QuiesceOptionError extends TypeError {
  readonly code = 'ERR_QUIESCE_INVALID_OPTION' as const
  readonly option: string
  declare readonly [brand]: true

  constructor(option: string, expected: string, received: unknown) {
    super(`quiesce: option \`${option}\` must be ${expected}; received ${describe(received)}`)
    this.option = option
    this.name = 'QuiesceOptionError'
    Object.defineProperty(this, brand, { value: true })
  }

  /** By brand and code, as for `QuiesceError`: holds across the ESM and CommonJS copies. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value) && (value as { code?: string }).code === 'ERR_QUIESCE_INVALID_OPTION'
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value)
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`
  if (Array.isArray(value)) return `an array (${value.length} items)`
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`
  return `${typeof value} ${String(value)}`
}
