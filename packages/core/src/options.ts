import os from 'node:os'
import { QuiesceOptionError } from './errors.js'
import type { GracefulOptions, Logger, PauseOptions, ResumeOptions } from './types.js'

/** The options after validation and defaults: one frozen object per controller. */
export interface ResolvedOptions {
  readonly timeout: number
  readonly signals: readonly string[]
  readonly readinessDelay: number
  readonly idleGrace: number
  readonly headerGrace: number
  readonly linger: number
  readonly abortGrace: number
  readonly duringDrain: 'close' | 'reject'
  readonly retryAfter: number
  readonly logger: Logger | null
  readonly fatalErrors: boolean
  readonly fatalTimeout: number
  readonly hooksTimeout: number
  readonly budget: number | null
  readonly exit: boolean
  readonly closeUpgraded: GracefulOptions['closeUpgraded'] | null
  readonly goawayTimeout: number
}

const KNOWN = new Set<string>([
  'timeout',
  'signals',
  'readinessDelay',
  'idleGrace',
  'headerGrace',
  'linger',
  'abortGrace',
  'duringDrain',
  'retryAfter',
  'logger',
  'fatalErrors',
  'fatalTimeout',
  'hooksTimeout',
  'budget',
  'exit',
  'closeUpgraded',
  'goawayTimeout',
])

/** Signals Node cannot deliver to JavaScript, or that leave the process unsafe when caught (D14). */
const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP'])
const UNSAFE = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE'])

/** The longest delay a Node timer holds (2^31−1 ms, about 24.8 days); longer ones fire after 1 ms. */
const MAX_DELAY = 2 ** 31 - 1

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new QuiesceOptionError(name, 'an object', value)
  }
  return value as Record<string, unknown>
}

function unknownKeys(where: string, given: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const key of Object.keys(given)) {
    if (!known.has(key)) {
      throw new QuiesceOptionError(`${where}${key}`, `one of the known options (${[...known].join(', ')})`, given[key])
    }
  }
}

/** A number of ms from `min` to what a timer can hold (2^31−1, D14). `undefined` gives the default. */
export function ms(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_DELAY) {
    throw new QuiesceOptionError(name, `a number of milliseconds from ${min} to ${MAX_DELAY} (2^31−1, the longest a timer can wait)`, value)
  }
  return value
}

/** Seconds for a `Retry-After` header: from 0 to 2^31−1 (delta-seconds, written as digits). */
function seconds(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_DELAY) {
    throw new QuiesceOptionError(name, `a number of seconds from 0 to ${MAX_DELAY}`, value)
  }
  return value
}

export function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new QuiesceOptionError(name, 'true or false', value)
  return value
}

/**
 * A signal this platform has (`os.constants.signals`: `SIGTRM` is a typo, not a signal), that
 * Node can deliver and that is safe to handle (D14).
 */
export function signalName(option: string, s: unknown): string {
  if (typeof s !== 'string' || !Object.prototype.hasOwnProperty.call(os.constants.signals, s)) {
    throw new QuiesceOptionError(option, `a signal name this platform has, such as "SIGTERM"`, s)
  }
  if (UNCATCHABLE.has(s)) throw new QuiesceOptionError(option, `a catchable signal (${s} cannot be caught)`, s)
  if (UNSAFE.has(s)) throw new QuiesceOptionError(option, `a signal that is safe to handle (${s} leaves the process in an undefined state)`, s)
  return s
}

/** `['SIGINT', 'SIGTERM']` by default, `false` for none, else an array of signal names. */
export function signalList(option: string, value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze(['SIGINT', 'SIGTERM'])
  if (value === false) return Object.freeze([])
  if (!Array.isArray(value)) throw new QuiesceOptionError(option, 'an array of signal names or false', value)
  return Object.freeze([...new Set(value.map((s: unknown) => signalName(option, s)))])
}

export function logger(value: unknown): Logger | null {
  if (value === false || value === null) return null
  if (value === undefined) return guarded(console)
  if (typeof value !== 'object' && typeof value !== 'function') {
    throw new QuiesceOptionError('logger', 'an object with info, warn and error methods, or false', value)
  }
  for (const m of ['info', 'warn', 'error'] as const) {
    if (typeof (value as Record<string, unknown>)[m] !== 'function') {
      throw new QuiesceOptionError(`logger.${m}`, 'a function', (value as Record<string, unknown>)[m])
    }
  }
  if (typeof (value as Logger).flush !== 'undefined' && typeof (value as Logger).flush !== 'function') {
    throw new QuiesceOptionError('logger.flush', 'a function (callback) => void, or absent', (value as Logger).flush)
  }
  return guarded(value as Logger)
}

const guardedLoggers = new WeakMap<Logger, Logger>()

/**
 * The user's logger, each call guarded: a logger that throws (a stream already ended when the
 * drain logs) must never break a request or the drain. One wrapper per logger, so that the
 * coordinator still sees one logger when several controllers share it.
 */
function guarded(target: Logger): Logger {
  let wrapper = guardedLoggers.get(target)
  if (wrapper === undefined) {
    const call = (method: 'info' | 'warn' | 'error', message: string): void => {
      try {
        target[method](message)
      } catch {
        /* the drain goes on without this line */
      }
    }
    wrapper = {
      info: (m) => call('info', m),
      warn: (m) => call('warn', m),
      error: (m) => call('error', m),
      flush: typeof target.flush === 'function' ? (callback) => target.flush?.(callback) : undefined,
    }
    guardedLoggers.set(target, wrapper)
  }
  return wrapper
}

/** vitest, jest and node:test each mark their workers; D11's handler stays off there unless asked for. */
function inTestRunner(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.VITEST || env.VITEST_WORKER_ID || env.JEST_WORKER_ID || env.NODE_TEST_CONTEXT)
}

export function resolveOptions(input: unknown, extraKnown: readonly string[] = []): ResolvedOptions {
  const o = checkObject('options', input)
  unknownKeys('', o, extraKnown.length ? new Set([...KNOWN, ...extraKnown]) : KNOWN)
  const timeout = ms('timeout', o.timeout, 10_000)
  const sigs = signalList('signals', o.signals)
  const closeUpgraded = o.closeUpgraded
  if (closeUpgraded !== undefined && typeof closeUpgraded !== 'function') {
    throw new QuiesceOptionError('closeUpgraded', 'a function (socket) => void', closeUpgraded)
  }
  // null is a value, not "absent" (D14): only undefined takes the default
  const duringDrain = o.duringDrain === undefined ? 'close' : o.duringDrain
  if (duringDrain !== 'close' && duringDrain !== 'reject') {
    throw new QuiesceOptionError('duringDrain', '"close" or "reject"', duringDrain)
  }
  const budget = o.budget === undefined ? null : ms('budget', o.budget, 0, 1)
  // an announce phase longer than the whole drain says nothing a drain can do (D14): the
  // listener would close only to be forced at once (a default never conflicts: it is cut to fit)
  const readinessDelay = ms('readinessDelay', o.readinessDelay, 0)
  if (o.readinessDelay !== undefined && readinessDelay > timeout) {
    throw new QuiesceOptionError(
      'readinessDelay',
      `at most \`timeout\` (${timeout} ms): the announce phase cannot outlast the drain's deadline`,
      o.readinessDelay,
    )
  }
  return Object.freeze({
    timeout,
    signals: sigs,
    readinessDelay,
    // above `timeout`: idle sockets are left to the client (a proxy) until the deadline closes them, not forced (D1)
    idleGrace: ms('idleGrace', o.idleGrace, 50),
    headerGrace: ms('headerGrace', o.headerGrace, 500),
    linger: ms('linger', o.linger, 500),
    // above `timeout`: the signals abort as the drain starts
    abortGrace: ms('abortGrace', o.abortGrace, 100),
    duringDrain,
    retryAfter: seconds('retryAfter', o.retryAfter, 1),
    logger: logger(o.logger),
    fatalErrors: bool('fatalErrors', o.fatalErrors, sigs.length > 0 && !inTestRunner()),
    fatalTimeout: ms('fatalTimeout', o.fatalTimeout, Math.min(timeout, 5000)),
    hooksTimeout: ms('hooksTimeout', o.hooksTimeout, 5000),
    budget,
    exit: bool('exit', o.exit, true),
    closeUpgraded: (closeUpgraded as ResolvedOptions['closeUpgraded']) ?? null,
    goawayTimeout: ms('goawayTimeout', o.goawayTimeout, 1000),
  })
}

export function resolveShutdownOptions(input: unknown): { timeout?: number } {
  const o = checkObject('shutdown options', input)
  unknownKeys('shutdown.', o, new Set(['timeout']))
  return o.timeout === undefined ? {} : { timeout: ms('timeout', o.timeout, 0) }
}

export function resolvePauseOptions(input: unknown): Required<PauseOptions> {
  const o = checkObject('pause options', input)
  unknownKeys('pause.', o, new Set(['mode', 'maxWait']))
  const mode = o.mode === undefined ? 'refuse' : o.mode
  if (mode !== 'refuse' && mode !== 'reject' && mode !== 'hold') {
    throw new QuiesceOptionError('mode', '"refuse", "reject" or "hold"', mode)
  }
  return { mode, maxWait: ms('maxWait', o.maxWait, 5000) }
}

export function resolveResumeOptions(input: unknown): Required<ResumeOptions> {
  const o = checkObject('resume options', input)
  unknownKeys('resume.', o, new Set(['retries']))
  const retries = o.retries === undefined ? 10 : o.retries
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) {
    throw new QuiesceOptionError('retries', 'a whole number ≥ 0', retries)
  }
  return { retries }
}

export function resolveHookOptions(hook: unknown, input: unknown, fallbackName: string): { name: string; timeout: number | null } {
  if (typeof hook !== 'function') throw new QuiesceOptionError('hook', 'a function', hook)
  const o = checkObject('hook options', input)
  unknownKeys('hook.', o, new Set(['name', 'timeout']))
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new QuiesceOptionError('name', 'a non-empty string', o.name)
  }
  return {
    name: (o.name as string | undefined) ?? (hook.name || fallbackName),
    timeout: o.timeout === undefined ? null : ms('timeout', o.timeout, 0),
  }
}
