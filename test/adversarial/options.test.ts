import http from 'node:http'
import os from 'node:os'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { GracefulOptions, ShutdownReport } from '@quiesce/core'
import { targets } from '../conformance/targets.js'
import type { App, Target } from '../conformance/fixtures/app.js'
import {
  anyValue,
  entries,
  fcOptions,
  get,
  mustAccept,
  MAX_TIMER,
  NUMERIC,
  DURATIONS,
  oddValues,
  show,
  showOptions,
  validMs,
  Watch,
  within,
  type NumericOption,
  failOnUnhandledRejections,
} from './helpers.js'

/**
 * D14 over every numeric option, on every entry point: an odd value is either accepted — and
 * then a drain with it ends in time, prints no TimeoutOverflowWarning and does not spin the
 * CPU — or rejected at the call with a TypeError that names the option.
 */

failOnUnhandledRejections()

/** A value out of a set the generator draws from for a drain: mostly valid, with every odd one. */
const drainValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0, 0.5, 1, 1.5, 10, 50, 120, MAX_TIMER) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(...oddValues) },
)

/** A record of some numeric options (each present or not). */
const optionRecord = fc.record(Object.fromEntries(NUMERIC.map((k) => [k, drainValue])) as Record<NumericOption, fc.Arbitrary<unknown>>, { requiredKeys: [] })

function invalidKeys(o: Record<string, unknown>, base: GracefulOptions = { timeout: 1000 }): string[] {
  const bad = Object.entries(o)
    .filter(([k, v]) => !mustAccept(k as NumericOption, v))
    .map(([k]) => k)
  // D14 "meaningless together": an announce phase longer than the whole drain (README: at most `timeout`)
  const timeout = o.timeout ?? base.timeout
  if (
    !bad.includes('timeout') &&
    !bad.includes('readinessDelay') &&
    typeof o.readinessDelay === 'number' &&
    typeof timeout === 'number' &&
    o.readinessDelay > timeout
  )
    bad.push('readinessDelay')
  return bad
}

function expectOptionError(err: unknown, names: readonly string[], context: string): void {
  expect(err, `${context}: a TypeError`).toBeInstanceOf(TypeError)
  const message = (err as Error).message
  expect(
    names.some((n) => message.includes(n)),
    `${context}: the message names one of ${names.join(', ')} — got "${message}"`,
  ).toBe(true)
}

interface DrainSeen {
  report?: ShutdownReport
  error?: unknown
  hung: boolean
  ms: number
  overflowWarnings: number
  cpuShare: number
  slow: { status?: number; error?: string; settled: number; body?: string }
}

/**
 * One drain on a running app: a keep-alive socket left idle (D1), one slow request (100 ms) in
 * flight (D2), then `shutdown()`. `hangAfter` ms with no end counts as a hang.
 */
async function drainOnce(app: App, hangAfter: number, shutdownOptions?: { timeout?: number }): Promise<DrainSeen> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 })
  try {
    const warm = await get(app.port, '/fast', agent).promise
    expect(warm.status).toBe(200)
    const slow = get(app.port, '/slow?ms=100', agent)
    await app.log.waitRan('GET /slow?ms=100')
    const watch = new Watch()
    const t0 = performance.now()
    const r = await within(app.g.shutdown(shutdownOptions), hangAfter)
    const ms = performance.now() - t0
    const cpu = watch.cpuShare()
    // the slow request settles (the drain ended, or the watchdog fired)
    await within(slow.promise, 1000)
    watch.stop()
    return {
      ...(r.hung ? {} : 'value' in r ? { report: r.value } : { error: r.error }),
      hung: r.hung,
      ms,
      overflowWarnings: watch.overflowWarnings,
      cpuShare: cpu.wallMs > 200 ? cpu.share : 0,
      slow: slow.reply,
    }
  } finally {
    agent.destroy()
  }
}

/** The longest a drain of `drainOnce` may take with these (accepted) options. */
function drainBound(o: Record<string, unknown>, base: GracefulOptions): number {
  const timeout = (o.timeout ?? base.timeout) as number
  const idleGrace = (o.idleGrace ?? 50) as number
  const readinessDelay = (o.readinessDelay ?? 0) as number
  return Math.min(timeout, Math.max(100, readinessDelay + idleGrace)) + 400
}

function checkDrain(seen: DrainSeen, bound: number, context: string): void {
  expect(seen.hung, `${context}: the drain ended (no hang past ${bound + 2000} ms)`).toBe(false)
  expect(seen.error, `${context}: shutdown() resolved`).toBeUndefined()
  expect(seen.ms, `${context}: the drain ended within ${bound} ms`).toBeLessThanOrEqual(bound)
  expect(seen.overflowWarnings, `${context}: no TimeoutOverflowWarning`).toBe(0)
  expect(seen.cpuShare, `${context}: the CPU did not spin during the drain`).toBeLessThan(0.9)
  expect(seen.slow.settled, `${context}: the slow request settled exactly once`).toBe(1)
  if (seen.slow.status !== undefined) {
    expect(seen.slow.status, `${context}: the slow request was answered 200`).toBe(200)
    expect(seen.slow.body, `${context}: with its whole body`).toBe('slow')
  } else {
    // cut: only when the deadline forced it
    expect(seen.report?.timedOut, `${context}: the slow request failed (${seen.slow.error}) although the drain did not time out`).toBe(true)
  }
}

async function startOrError(target: Target, options: GracefulOptions): Promise<{ app?: App; error?: unknown }> {
  try {
    return { app: await target.start(options) }
  } catch (error) {
    return { error }
  }
}

describe.each(targets)('$name', (target) => {
  it('D14.1 graceful() with random numeric options: a TypeError naming a bad option at the call, or a drain that ends in time with no timer overflow, no CPU spin, the in-flight request answered once', async () => {
    const base: GracefulOptions = { timeout: 1000 }
    await fc.assert(
      fc.asyncProperty(optionRecord, async (o) => {
        const bad = invalidKeys(o)
        const started = await startOrError(target, { ...base, ...o } as GracefulOptions)
        if (started.error !== undefined) {
          expect(bad.length, `${showOptions(o)} was rejected (${(started.error as Error).message}) but every value is valid`).toBeGreaterThan(0)
          expectOptionError(started.error, bad, showOptions(o))
          return
        }
        const app = started.app as App
        try {
          // run the drain even when the options should have been rejected: the failure then says what they did
          const bound = bad.length ? 1400 : drainBound(o, base)
          const seen = await drainOnce(app, bound + 2000)
          const what = `${showOptions(o)} → drain ${Math.round(seen.ms)} ms, timedOut ${seen.report?.timedOut}, ${seen.overflowWarnings} TimeoutOverflowWarnings, CPU ${seen.cpuShare.toFixed(2)}, slow request ${seen.slow.status ?? seen.slow.error}`
          expect(bad, `accepted although ${bad.join(', ')} must be rejected: ${what}`).toEqual([])
          checkDrain(seen, bound, what)
        } finally {
          if (app.g.state !== 'closed') await within(app.g.shutdown({ timeout: 0 }), 3000)
        }
      }),
      // the issue's cases first (timeout 2^31, idleGrace 3e9), then random records
      { ...fcOptions(40, 40_000), examples: [[{ timeout: 2 ** 31 }], [{ idleGrace: 3e9 }], [{ linger: 3e9, headerGrace: MAX_TIMER }]] },
    )
  })

  it('D14.2 every duration option above 2^31−1 ms is rejected at the call with a TypeError naming the option and the limit', async () => {
    const entry = entries.find((e) => e.name === target.name)!
    const failures: string[] = []
    for (const name of DURATIONS) {
      for (const value of [2 ** 31, 3e9, MAX_TIMER + 0.5, 2 ** 40]) {
        try {
          // a short timeout beside the option under test: a wrongly accepted readinessDelay then only announces for 1 s
          const { close } = await entry.create({ signals: false, ...(name === 'timeout' ? {} : { timeout: 1000 }), [name]: value })
          await close()
          failures.push(`${name}: ${show(value)} accepted`)
        } catch (err) {
          const m = (err as Error).message
          if (!(err instanceof TypeError) || !m.includes(name) || !/2147483647|2\^31|2 \*\* 31/.test(m))
            failures.push(`${name}: ${show(value)} → ${(err as Error).name}: ${m}`)
        }
      }
    }
    expect(failures, 'durations above 2^31−1 ms accepted, or rejected without naming the option and the limit').toEqual([])
  })

  it('D14.3 every numeric option: NaN, ±Infinity, negatives, strings, objects, null, booleans are rejected at the call with a TypeError naming the option', async () => {
    const entry = entries.find((e) => e.name === target.name)!
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...NUMERIC), anyValue, async (name, value) => {
        let created: Awaited<ReturnType<typeof entry.create>> | undefined
        let error: unknown
        try {
          // readinessDelay is bounded by timeout too (D14, meaningless together): give it room
          created = await entry.create({ signals: false, ...(name === 'readinessDelay' ? { timeout: MAX_TIMER } : {}), [name]: value })
        } catch (err) {
          error = err
        }
        if (created) await created.close()
        if (mustAccept(name, value)) {
          expect(error, `${name}: ${show(value)} must be accepted`).toBeUndefined()
        } else {
          expect(error, `${name}: ${show(value)} must be rejected`).toBeDefined()
          expectOptionError(error, [name], `${name}: ${show(value)}`)
        }
      }),
      {
        ...fcOptions(200, 20_000),
        examples: [
          ['timeout', 3e9],
          ['idleGrace', Number.NaN],
        ],
      },
    )
  })

  it("D14.4 signals: a name the platform does not have (SIGTRM) and SIGKILL/SIGSTOP/SIGSEGV/SIGBUS/SIGILL/SIGFPE are rejected naming `signals`; the platform's other catchable signals are accepted", async () => {
    const entry = entries.find((e) => e.name === target.name)!
    const platform = new Set(Object.keys(os.constants.signals))
    const forbidden = ['SIGKILL', 'SIGSTOP', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE']
    const name = fc.oneof(
      fc.constantFrom('SIGTRM', 'SIGTERN', 'SIGINTT', 'SIGHUPP', 'SIGUSR3', 'SIGRTMAX', 'SIGINFO', ...forbidden),
      fc.stringMatching(/^SIG[A-Z]{2,6}$/),
      fc.constantFrom(...platform),
    )
    await fc.assert(
      fc.asyncProperty(name, async (signal) => {
        let error: unknown
        let created: Awaited<ReturnType<typeof entry.create>> | undefined
        try {
          created = await entry.create({ signals: [signal], fatalErrors: false })
        } catch (err) {
          error = err
        }
        if (created) await created.close()
        const ok = platform.has(signal) && !forbidden.includes(signal)
        if (ok) expect(error, `${signal} is a catchable signal of this platform`).toBeUndefined()
        else expectOptionError(error, ['signals'], `signals: ['${signal}'] (${platform.has(signal) ? 'must not be caught' : 'not a signal of this platform'})`)
      }),
      { ...fcOptions(60, 15_000), examples: [['SIGTRM'], ['SIGKILL'], ['SIGTERM']] },
    )
  })

  it('D14.5 shutdown({ timeout }): a bad value throws a TypeError naming `timeout` synchronously, at the call (not a rejected promise); a good one drains in time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyValue, fc.constantFrom(0, 0.5, 30, 250, MAX_TIMER)), async (value) => {
        await using app = await target.start({ timeout: 1000 })
        let thrown: unknown
        let result: Promise<ShutdownReport> | undefined
        try {
          result = app.g.shutdown({ timeout: value as number })
        } catch (err) {
          thrown = err
        }
        if (!validMs(value)) {
          // a rejected promise instead of a throw is what this property is here to catch
          if (result !== undefined) {
            const settled = await within(result, 3000)
            const how = settled.hung
              ? 'a promise that never settled'
              : 'error' in settled
                ? `a rejected promise (${(settled.error as Error).message})`
                : 'a drain that ran'
            expect.fail(`shutdown({ timeout: ${show(value)} }) did not throw at the call: it returned ${how}`)
          }
          expectOptionError(thrown, ['timeout'], `shutdown({ timeout: ${show(value)} })`)
          expect(app.g.state, 'a rejected call starts no drain').toBe('running')
          return
        }
        expect(thrown, `shutdown({ timeout: ${show(value)} }) accepted`).toBeUndefined()
        const r = await within(result as Promise<ShutdownReport>, Math.min(value as number, 1000) + 2000)
        expect(r.hung, `shutdown({ timeout: ${show(value)} }) ended`).toBe(false)
      }),
      { ...fcOptions(40, 20_000), examples: [[3e9], [Number.NaN], ['100']] },
    )
  })

  it('D14.6 pause({ mode, maxWait }) and resume({ retries }): bad input throws a TypeError naming the option synchronously; an accepted maxWait holds a request and answers it exactly once (503 at maxWait, or 200 after resume), with no timer overflow and no CPU spin', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom('refuse', 'reject', 'hold'), fc.constantFrom('HOLD', '', 'pause', null, 1, {})),
        fc.oneof(anyValue, fc.constantFrom(0, 1, 50, 150, MAX_TIMER)),
        fc.oneof(fc.constantFrom(0, 1, 3, 10), anyValue),
        async (mode, maxWait, retries) => {
          await using app = await target.start({ timeout: 1000 })
          const goodMode = mode === 'refuse' || mode === 'reject' || mode === 'hold'
          const goodWait = validMs(maxWait)
          let thrown: unknown
          let result: Promise<void> | undefined
          try {
            result = app.g.pause({ mode: mode as 'hold', maxWait: maxWait as number })
          } catch (err) {
            thrown = err
          }
          if (!goodMode || !goodWait) {
            if (result !== undefined) {
              const settled = await within(result, 2000)
              expect.fail(
                `pause({ mode: ${show(mode)}, maxWait: ${show(maxWait)} }) did not throw at the call: ${settled.hung ? 'pending' : 'error' in settled ? `rejected (${(settled.error as Error).message})` : 'it paused'}`,
              )
            }
            expectOptionError(
              thrown,
              [...(goodMode ? [] : ['mode']), ...(goodWait ? [] : ['maxWait'])],
              `pause({ mode: ${show(mode)}, maxWait: ${show(maxWait)} })`,
            )
            expect(app.g.state).toBe('running')
            return
          }
          await result
          expect(app.g.state).toBe('paused')
          let held: ReturnType<typeof get> | undefined
          if (mode === 'hold') {
            const watch = new Watch()
            held = get(app.port, '/fast', false)
            const wait = maxWait as number
            // a short maxWait: answered 503 by itself; a long one: resume() lets it through
            const t0 = performance.now()
            if (wait > 300) {
              await new Promise((r) => setTimeout(r, 200))
            }
            const r = await within(held.promise, wait > 300 ? 1 : wait + 1000)
            const cpu = watch.cpuShare()
            watch.stop()
            const context = `pause({ mode: 'hold', maxWait: ${show(maxWait)} }) after ${Math.round(performance.now() - t0)} ms`
            expect(watch.overflowWarnings, `${context}: no TimeoutOverflowWarning`).toBe(0)
            // a CPU share over a few ms is noise, not a spin (as in checkDrain: windows over 200 ms only)
            if (cpu.wallMs > 200) expect(cpu.share, `${context}: the CPU did not spin`).toBeLessThan(0.9)
            if (wait <= 300) {
              expect(r.hung, `${context}: the held request was answered by maxWait`).toBe(false)
              expect(held.reply.status, `${context}: 503`).toBe(503)
            } else {
              expect(held.reply.settled, `${context}: still held before maxWait (got ${held.reply.status ?? held.reply.error})`).toBe(0)
            }
          }
          let resumeThrown: unknown
          let resumed: Promise<void> | undefined
          try {
            resumed = app.g.resume({ retries: retries as number })
          } catch (err) {
            resumeThrown = err
          }
          const goodRetries = typeof retries === 'number' && Number.isInteger(retries) && retries >= 0
          if (!goodRetries) {
            if (resumed !== undefined) {
              const settled = await within(resumed, 2000)
              expect.fail(
                `resume({ retries: ${show(retries)} }) did not throw at the call: ${settled.hung ? 'pending' : 'error' in settled ? `rejected (${(settled.error as Error).message})` : 'it resumed'}`,
              )
            }
            expectOptionError(resumeThrown, ['retries'], `resume({ retries: ${show(retries)} })`)
            await app.g.resume()
          } else {
            await resumed
          }
          expect(app.g.state).toBe('running')
          if (held !== undefined) {
            await held.promise
            expect(held.reply.settled, 'the held request was answered exactly once').toBe(1)
            if ((maxWait as number) > 300) expect(held.reply.status, 'the held request ran after resume()').toBe(200)
          }
          const after = await get(app.port, '/fast', false).promise
          expect(after.status, 'served again after resume()').toBe(200)
        },
      ),
      {
        ...fcOptions(50, 30_000),
        examples: [
          ['hold', 3e9, 0],
          ['hold', 100, 0],
          ['HOLD', 100, 0],
        ],
      },
    )
  })

  it('D14.7 onShutdown/beforeShutdown(hook, { timeout, name }): bad input throws a TypeError naming it at the call; an accepted timeout lets a 30 ms hook finish (no timer overflow cutting it at 1 ms)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('onShutdown', 'beforeShutdown'),
        fc.oneof(anyValue, fc.constantFrom(200, 1000, MAX_TIMER)),
        fc.oneof(fc.constant(undefined), fc.constantFrom('db', '', 1, null, {})),
        fc.oneof(fc.constant('fn'), fc.constantFrom(null, 'hook', {}, 1)),
        async (which, timeout, name, hookKind) => {
          await using app = await target.start({ timeout: 1000, hooksTimeout: 1000 })
          let ran = 0
          const hook =
            hookKind === 'fn'
              ? async () => {
                  ran++
                  await new Promise((r) => setTimeout(r, 30))
                }
              : hookKind
          const goodTimeout = validMs(timeout)
          const goodName = name === undefined || (typeof name === 'string' && name !== '')
          const goodHook = typeof hook === 'function'
          let thrown: unknown
          try {
            app.g[which](hook as () => void, { timeout: timeout as number, ...(name === undefined ? {} : { name: name as string }) })
          } catch (err) {
            thrown = err
          }
          const context = `${which}(${hookKind}, { timeout: ${show(timeout)}, name: ${show(name)} })`
          if (!goodTimeout || !goodName || !goodHook) {
            expectOptionError(thrown, [...(goodTimeout ? [] : ['timeout']), ...(goodName ? [] : ['name']), ...(goodHook ? [] : ['hook'])], context)
            return
          }
          expect(thrown, `${context} accepted`).toBeUndefined()
          const watch = new Watch()
          const report = await app.g.shutdown()
          watch.stop()
          expect(ran, `${context}: the hook ran once`).toBe(1)
          const mine = report.hooks.filter((h) => h.name !== 'fastify onClose hooks')
          expect(mine.length).toBe(1)
          if ((timeout as number) >= 200)
            expect(mine[0], `${context}: the 30 ms hook finished within its ${show(timeout)} ms`).toMatchObject({ ok: true, timedOut: false })
          expect(watch.overflowWarnings, `${context}: no TimeoutOverflowWarning`).toBe(0)
        },
      ),
      {
        ...fcOptions(60, 20_000),
        examples: [
          ['onShutdown', 3e9, undefined, 'fn'],
          ['beforeShutdown', 200, '', 'fn'],
        ],
      },
    )
  })

  it('D14.13 hooksTimeout: an accepted value lets a 30 ms cleanup hook finish (no timer overflow failing it after 1 ms and turning the report ok: false)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(200, 1000, MAX_TIMER, 2 ** 31, 3e9), anyValue),
        fc.constantFrom(undefined, 1000, MAX_TIMER, 3e9),
        async (hooksTimeout, hookTimeout) => {
          const started = await startOrError(target, { timeout: 1000, hooksTimeout: hooksTimeout as number })
          if (started.error !== undefined) {
            expect(mustAccept('hooksTimeout', hooksTimeout), `hooksTimeout: ${show(hooksTimeout)} rejected: ${(started.error as Error).message}`).toBe(false)
            expectOptionError(started.error, ['hooksTimeout'], `hooksTimeout: ${show(hooksTimeout)}`)
            return
          }
          const app = started.app as App
          try {
            let hookError: unknown
            try {
              app.g.onShutdown(
                async () => {
                  await new Promise((r) => setTimeout(r, 30))
                },
                { name: 'db', ...(hookTimeout === undefined ? {} : { timeout: hookTimeout }) },
              )
            } catch (err) {
              hookError = err
            }
            const watch = new Watch()
            const report = await app.g.shutdown()
            watch.stop()
            const db = report.hooks.find((h) => h.name === 'db')
            const context = `hooksTimeout: ${show(hooksTimeout)}, hook timeout: ${show(hookTimeout)} → ${hookError === undefined ? JSON.stringify(db) : `hook rejected (${(hookError as Error).message})`}, ${watch.overflowWarnings} TimeoutOverflowWarnings`
            expect(mustAccept('hooksTimeout', hooksTimeout), `accepted: ${context}`).toBe(true)
            if (hookError !== undefined) {
              expect(validMs(hookTimeout), context).toBe(false)
              return
            }
            expect(validMs(hookTimeout ?? 0), `hook timeout accepted: ${context}`).toBe(true)
            if ((hooksTimeout as number) >= 200) expect(db, context).toMatchObject({ ok: true, timedOut: false })
            expect(watch.overflowWarnings, context).toBe(0)
          } finally {
            await app[Symbol.asyncDispose]()
          }
        },
      ),
      {
        ...fcOptions(40, 20_000),
        examples: [
          [2 ** 31, undefined],
          [MAX_TIMER, 1000],
        ],
      },
    )
  })

  it('D14.8 retryAfter: every accepted value gives a valid Retry-After (delta-seconds, digits only) on the 503s quiesce writes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(0, 0.2, 1, 1.5, 120, MAX_TIMER, 2 ** 31, 1e15, 1e21, Number.MAX_VALUE), fc.double({ min: 0, max: 1e300, noNaN: true })),
        async (retryAfter) => {
          let app: App
          try {
            app = await target.start({ retryAfter })
          } catch (err) {
            // rejecting a value is allowed (D14), with a TypeError naming it
            expectOptionError(err, ['retryAfter'], `retryAfter: ${show(retryAfter)}`)
            return
          }
          try {
            await app.g.pause({ mode: 'reject' })
            const r = await get(app.port, '/fast', false).promise
            expect(r.status).toBe(503)
            expect(r.headers?.['retry-after'], `retryAfter: ${show(retryAfter)} → Retry-After: ${r.headers?.['retry-after']}`).toMatch(/^\d+$/)
          } finally {
            await app[Symbol.asyncDispose]()
          }
        },
      ),
      { ...fcOptions(40, 15_000), examples: [[1e21], [1.5]] },
    )
  })
})

describe("the entry points' own options", () => {
  it('D14.9 Express/Koa `server` option: anything that is not an http/https/http2 server is a TypeError naming `server` at the call', async () => {
    for (const entry of entries.filter((e) => e.name === 'express' || e.name === 'koa')) {
      for (const value of ['localhost:3000', 3000, {}, { listen() {} }, [], true, new http.Agent()]) {
        const r = await entry.create({ signals: false, server: value }).then(
          async (c) => {
            await c.close()
            return null
          },
          (err: unknown) => err,
        )
        expect(r, `${entry.name}: server: ${show(value)} accepted`).not.toBeNull()
        expectOptionError(r, ['server'], `${entry.name}: server: ${show(value)}`)
      }
    }
  })

  it('D14.10 an unknown or misspelled option (timout, idle_grace, Timeout) is a TypeError naming it at the call, on every entry point', async () => {
    for (const entry of entries) {
      for (const key of ['timout', 'idle_grace', 'Timeout', 'signal', 'hooksTimout', '__proto__x']) {
        const r = await entry.create({ signals: false, [key]: 1000 }).then(
          async (c) => {
            await c.close()
            return null
          },
          (err: unknown) => err,
        )
        expect(r, `${entry.name}: ${key} accepted`).not.toBeNull()
        expectOptionError(r, [key], `${entry.name}: ${key}`)
      }
    }
  })
})

describe('D14: null is a value, not "absent"', () => {
  it('D14.14 `null` where an option has a default (pause mode, resume retries, duringDrain) is a TypeError naming the option, as it is for timeout/maxWait/idleGrace — not silently the default', async () => {
    const failures: string[] = []
    for (const entry of entries) {
      const made = await entry.create({ signals: false, duringDrain: null }).then(
        async (c) => {
          await c.close()
          return null
        },
        (err: unknown) => err,
      )
      if (made === null) failures.push(`${entry.name}: graceful({ duringDrain: null }) accepted (as 'close')`)
      else if (!(made instanceof TypeError) || !(made as Error).message.includes('duringDrain'))
        failures.push(`${entry.name}: duringDrain: null → ${(made as Error).message}`)
      const { g, close } = await entry.create({ signals: false })
      for (const [what, call] of [
        ['pause({ mode: null })', () => g.pause({ mode: null as unknown as 'hold' })],
        ['resume({ retries: null })', () => g.resume({ retries: null as unknown as number })],
      ] as const) {
        let thrown: unknown = null
        let p: Promise<void> | undefined
        try {
          p = call()
        } catch (err) {
          thrown = err
        }
        if (p !== undefined) {
          await p.catch(() => {})
          failures.push(`${entry.name}: ${what} accepted`)
        } else if (!(thrown instanceof TypeError) || !/mode|retries/.test((thrown as Error).message)) {
          failures.push(`${entry.name}: ${what} → ${(thrown as Error).message}`)
        }
      }
      if (g.state === 'paused') await g.resume()
      await close()
    }
    expect(failures).toEqual([])
  })
})

describe("D4 with Fastify: an announce phase longer than avvio's 10 s close timeout", () => {
  it('D4.1 fastify: readinessDelay 10.5 s (timeout 30 s): fastify.close() resolves after the announce phase — it neither rejects with avvio\'s "Plugin did not start in time" nor leaves the drain unfinished', async () => {
    const { fastifyTarget } = await import('../conformance/fixtures/fastify.js')
    const app = await fastifyTarget.start({ readinessDelay: 10_500, timeout: 30_000 })
    const t0 = performance.now()
    const closing = within(app.frameworkClose(), 25_000)
    const report = within(app.g.shutdown(), 25_000)
    const [c, r] = await Promise.all([closing, report])
    const ms = Math.round(performance.now() - t0)
    expect(c.hung, `fastify.close() still pending after ${ms} ms`).toBe(false)
    expect('error' in c ? (c.error as Error).message : null, 'fastify.close() rejected').toBeNull()
    expect(r.hung).toBe(false)
    expect(ms).toBeGreaterThanOrEqual(10_400)
    expect(app.server.listening).toBe(false)
  }, 40_000)
})

describe('D6: timeout is the hard bound', () => {
  it.each(targets)(
    'D6.1 $name: a request that never ends, with a random timeout in [0, 300] ms: the drain ends by the timeout (+25 ms), not timeout + abortGrace',
    async (target) => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0, 20, 100, 250), async (timeout, abortGrace) => {
          if (abortGrace > timeout) return
          await using app = await target.start({ timeout, abortGrace })
          const hanging = get(app.port, '/never?react=0', false)
          await app.log.waitRan('GET /never?react=0')
          const t0 = performance.now()
          const r = await within(app.g.shutdown(), timeout + 3000)
          const ms = performance.now() - t0
          expect(r.hung, `timeout ${timeout}, abortGrace ${abortGrace}: the drain ended`).toBe(false)
          expect(ms, `timeout ${timeout}, abortGrace ${abortGrace}: drain took ${Math.round(ms)} ms`).toBeLessThanOrEqual(timeout + 25)
          await hanging.promise
          expect(hanging.reply.settled).toBe(1)
        }),
        // the issue's own case first (timeout 150, abortGrace 100), then random ones
        { ...fcOptions(15, 20_000), examples: [[150, 100]] },
      )
    },
  )
})

describe('D6: what the deadline forced is not counted any more', () => {
  it.each(targets)(
    'D6.3 $name: a drain that forces a request whose handler ignores the abort: once shutdown() resolved, stats() shows 0 requests in flight (0 connections, closed), as for a client that left (D10)',
    async (target) => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 200 }), fc.constantFrom(0, 50), fc.integer({ min: 1, max: 3 }), async (timeout, abortGrace, n) => {
          if (abortGrace > timeout) return
          await using app = await target.start({ timeout, abortGrace })
          const hanging = Array.from({ length: n }, (_, i) => get(app.port, `/never?react=0&i=${i}`, false))
          for (let i = 0; i < n; i++) await app.log.waitRan(`GET /never?react=0&i=${i}`)
          const r = await within(app.g.shutdown(), timeout + 3000)
          expect(r.hung).toBe(false)
          const s = app.g.stats()
          expect(s.state).toBe('closed')
          expect(s.connections).toBe(0)
          expect(
            s.requestsInFlight,
            `timeout ${timeout}, abortGrace ${abortGrace}: ${n} forced requests (their handlers never return) still counted in flight after the drain`,
          ).toBe(0)
          await Promise.all(hanging.map((h) => h.promise))
        }),
        {
          ...fcOptions(8, 15_000),
          examples: [
            [0, 0, 1],
            [150, 50, 2],
          ],
        },
      )
    },
  )
})

describe('D6: shutdown({ timeout }) overrides the option for this drain', () => {
  it.each(targets)(
    'D6.2 $name: graceful({ timeout: T1 }) then shutdown({ timeout: T2 }) with a request that never ends: the deadline is T2 — longer or shorter than T1 (types.ts: "Overrides `timeout` for this drain")',
    async (target) => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 50, max: 300 }), fc.integer({ min: 50, max: 300 }), async (t1, t2) => {
          await using app = await target.start({ timeout: t1, abortGrace: 20 })
          const hanging = get(app.port, '/never?react=0', false)
          await app.log.waitRan('GET /never?react=0')
          const t0 = performance.now()
          const r = await within(app.g.shutdown({ timeout: t2 }), Math.max(t1, t2) + 3000)
          const ms = performance.now() - t0
          expect(r.hung).toBe(false)
          // tolerant of D6.1 (the drain ending abortGrace after the deadline): only which deadline counts is measured here
          expect(ms, `timeout ${t1}, shutdown({ timeout: ${t2} }): the drain was cut after ${Math.round(ms)} ms`).toBeGreaterThanOrEqual(t2 - 5)
          expect(ms, `timeout ${t1}, shutdown({ timeout: ${t2} }): the drain was cut after ${Math.round(ms)} ms`).toBeLessThanOrEqual(t2 + 20 + 60)
          await hanging.promise
        }),
        {
          ...fcOptions(10, 20_000),
          examples: [
            [50, 200],
            [200, 50],
          ],
        },
      )
    },
  )
})
