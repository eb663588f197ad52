import http from 'node:http'
import type { Socket } from 'node:net'
import fc from 'fast-check'
import { afterEach, beforeEach, expect } from 'vitest'
import Fastify from 'fastify'
import { graceful as nodeGraceful, type Controller, type GracefulOptions } from '@quiesce/core'
import { graceful as expressGraceful } from '@quiesce/express'
import { graceful as koaGraceful } from '@quiesce/koa'
import { gracefulPlugin } from '@quiesce/fastify'

/** The largest delay a Node timer holds (D14): above it, setTimeout fires after 1 ms. */
export const MAX_TIMER = 2 ** 31 - 1

/** Every numeric option of graceful() that is a duration in ms, and the others. */
export const DURATIONS = [
  'timeout',
  'readinessDelay',
  'idleGrace',
  'headerGrace',
  'linger',
  'abortGrace',
  'fatalTimeout',
  'hooksTimeout',
  'budget',
  'goawayTimeout',
] as const
export const NUMERIC = [...DURATIONS, 'retryAfter'] as const
export type NumericOption = (typeof NUMERIC)[number]

/** Odd values, the ones a user (or a config file, or an env var) hands over by mistake. */
export const oddValues: unknown[] = [
  Number.NaN,
  Infinity,
  -Infinity,
  -1,
  -0.5,
  -0,
  0,
  0.5,
  1.5,
  1,
  10,
  MAX_TIMER,
  2 ** 31,
  3e9,
  1e21,
  Number.MAX_SAFE_INTEGER,
  '100',
  '',
  '1e3',
  {},
  [],
  [100],
  null,
  true,
  false,
  10n,
  () => 100,
  new Number(100),
  new Date(0),
  Symbol('x'),
]

/** Any value: the odd ones, plus random doubles and integers. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...oddValues) },
  { weight: 1, arbitrary: fc.double({ noNaN: false }) },
  { weight: 1, arbitrary: fc.integer({ min: -10, max: 400 }) },
  { weight: 1, arbitrary: fc.double({ min: MAX_TIMER - 2, max: 2 ** 32, noNaN: true }) },
)

/** A value an option of ms must accept (D14): a finite number in [min, 2^31−1]. */
export function validMs(value: unknown, min = 0): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= MAX_TIMER
}

/** What the contract says graceful() must do with `name: value`: accept it, or throw naming it. */
export function mustAccept(name: NumericOption, value: unknown): boolean {
  if (value === undefined) return true
  if (name === 'budget') return validMs(value, 1)
  // seconds in a Retry-After header: digits only, bounded as a timer is (README: up to 2^31−1)
  if (name === 'retryAfter') return validMs(value)
  return validMs(value)
}

export function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'symbol') return value.toString()
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

export function showOptions(o: Record<string, unknown>): string {
  return `{ ${Object.entries(o)
    .map(([k, v]) => `${k}: ${show(v)}`)
    .join(', ')} }`
}

/** The entry points, each given options and returning a controller (not listening) or throwing/rejecting. */
export interface Entry {
  readonly name: 'node' | 'express' | 'koa' | 'fastify'
  /** Creates a controller with these options; `close` releases it (and its signal handlers). */
  create(options: Record<string, unknown>): Promise<{ g: Controller; close: () => Promise<void> }>
}

const quiet = { logger: false } as const

export const entries: Entry[] = [
  {
    name: 'node',
    async create(options) {
      const server = http.createServer((_req, res) => res.end('ok'))
      const g = nodeGraceful(server, { ...quiet, ...options } as GracefulOptions)
      return {
        g,
        close: async () => {
          await g.shutdown({ timeout: 0 })
        },
      }
    },
  },
  {
    name: 'express',
    async create(options) {
      const g = expressGraceful({ ...quiet, ...options } as GracefulOptions)
      return {
        g,
        close: async () => {
          await g.shutdown({ timeout: 0 })
        },
      }
    },
  },
  {
    name: 'koa',
    async create(options) {
      const g = koaGraceful({ ...quiet, ...options } as GracefulOptions)
      return {
        g,
        close: async () => {
          await g.shutdown({ timeout: 0 })
        },
      }
    },
  },
  {
    name: 'fastify',
    async create(options) {
      const app = Fastify({ logger: false })
      try {
        await app.register(gracefulPlugin, { ...quiet, ...options } as GracefulOptions)
        await app.ready()
      } catch (err) {
        await app.close().catch(() => {})
        throw err
      }
      return {
        g: app.graceful,
        close: async () => {
          await app.close()
        },
      }
    },
  },
]

/** Observes the process while a piece of work runs: TimeoutOverflowWarnings, unhandled rejections, CPU. */
export class Watch {
  overflowWarnings = 0
  readonly warnings: string[] = []
  readonly rejections: unknown[] = []
  #onWarning = (w: Error): void => {
    if (w.name === 'TimeoutOverflowWarning') this.overflowWarnings++
    else this.warnings.push(`${w.name}: ${w.message}`)
  }
  #onRejection = (reason: unknown): void => {
    this.rejections.push(reason)
  }
  #cpu = process.cpuUsage()
  #t0 = performance.now()

  constructor() {
    process.on('warning', this.#onWarning)
    process.on('unhandledRejection', this.#onRejection)
  }

  /** CPU time / wall time since the watch began (1 = one core busy all along). */
  cpuShare(): { share: number; wallMs: number } {
    const c = process.cpuUsage(this.#cpu)
    const wallMs = performance.now() - this.#t0
    return { share: (c.user + c.system) / 1000 / Math.max(1, wallMs), wallMs }
  }

  stop(): void {
    process.off('warning', this.#onWarning)
    process.off('unhandledRejection', this.#onRejection)
  }
}

/** Resolves with the promise's outcome, or with `{ hung: true }` after `ms` (the watchdog: a hang fails the property instead of the test timing out). */
export async function within<T>(p: Promise<T>, ms: number): Promise<{ hung: false; value: T } | { hung: false; error: unknown } | { hung: true }> {
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<{ hung: true }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), Math.min(ms, MAX_TIMER))
  })
  try {
    return await Promise.race([
      p.then(
        (value) => ({ hung: false as const, value }),
        (error: unknown) => ({ hung: false as const, error }),
      ),
      watchdog,
    ])
  } finally {
    clearTimeout(timer)
  }
}

export interface Reply {
  status?: number
  body?: string
  headers?: http.IncomingHttpHeaders
  error?: string
  /** How many times this request was settled (must be exactly 1). */
  settled: number
  /** The request went out on a keep-alive socket that had carried an earlier request (not a new connection). */
  reused?: boolean
}

/**
 * One GET; records its outcome (a complete response or an error code) and how many times it settled.
 * `onSocket` runs when the request gets its socket, just before its bytes are written.
 */
export function get(port: number, path: string, agent: http.Agent | false, onSocket?: (socket: Socket) => void): { promise: Promise<Reply>; reply: Reply } {
  const reply: Reply = { settled: 0 }
  const promise = new Promise<Reply>((resolve) => {
    const settle = (): void => {
      reply.settled++
      resolve(reply)
    }
    const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => {
        reply.status = res.statusCode
        reply.headers = res.headers
        reply.body = body
        settle()
      })
      res.on('error', (err: NodeJS.ErrnoException) => {
        reply.error = err.code ?? err.message
        settle()
      })
      res.on('aborted', () => {
        if (reply.error === undefined && reply.status === undefined) reply.error = 'aborted'
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      reply.error = err.code ?? err.message
      settle()
    })
    req.on('socket', (socket) => {
      reply.reused = req.reusedSocket
      onSocket?.(socket)
    })
    req.end()
  })
  return { promise, reply }
}

/** fast-check's settings for these properties: modest runs, a time limit, a fixed seed when FC_SEED is set. */
export function fcOptions(numRuns: number, maxMs = 40_000): fc.Parameters<unknown> {
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
  return { numRuns, interruptAfterTimeLimit: maxMs, markInterruptAsFailure: false, ...(seed === undefined ? {} : { seed }) }
}

/**
 * Fails every test of the calling file that lets a promise reject unhandled (in its own code or
 * the library's): registers a beforeEach/afterEach pair that collects 'unhandledRejection' and
 * expects none once the test is over. Call it once, at the top level of a test file.
 */
export function failOnUnhandledRejections(): void {
  let rejections: unknown[] = []
  const onRejection = (reason: unknown): void => {
    rejections.push(reason)
  }
  beforeEach(() => {
    rejections = []
    process.on('unhandledRejection', onRejection)
  })
  afterEach(() => {
    process.off('unhandledRejection', onRejection)
    expect(rejections, 'unhandled rejections').toEqual([])
  })
}
