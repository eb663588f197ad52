import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { anyValue, MAX_TIMER, oddValues, show } from './helpers.js'

/**
 * D14 for `gracefulCluster()`: it must be the cluster primary and an accepted value forks a worker,
 * so every case runs in a child process of its own (fixtures/cluster-options.mjs), one process
 * for all cases.
 */
const here = path.dirname(fileURLToPath(import.meta.url))

interface Outcome {
  option: string
  value: unknown
  threw: boolean
  typeError?: boolean
  message?: string
  ms?: number
  hung?: boolean
  killed?: boolean | null
  overflow?: number
}

const encode = (v: unknown): unknown => (typeof v === 'number' ? { n: Object.is(v, -0) ? '-0' : String(v) } : v)
const decodeShow = (v: unknown): string => show(v !== null && typeof v === 'object' && 'n' in (v as object) ? Number((v as { n: string }).n) : v)

function run(cases: Array<{ option: string; value: unknown }>): Outcome[] {
  const r = spawnSync(
    process.execPath,
    [path.join(here, 'fixtures', 'cluster-options.mjs'), JSON.stringify(cases.map((c) => ({ ...c, value: encode(c.value) })))],
    {
      encoding: 'utf8',
      timeout: 50_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  )
  expect(r.status, `cluster-options.mjs exited ${r.status}: ${r.stderr}`).toBe(0)
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Outcome)
}

/** Plain values (JSON-encodable, no functions/bigints/symbols): what the child can receive. */
const plain = (v: unknown): boolean =>
  v === null || ['number', 'string', 'boolean'].includes(typeof v) || (typeof v === 'object' && !(v instanceof Date) && !(v instanceof Number))

describe('gracefulCluster() options', () => {
  it('D14.11 killTimeout, startTimeout, workers: a bad value (NaN, ±Infinity, ≤ 0, fractions of workers, > 2^31−1 ms, strings, objects, null, booleans) is a TypeError naming the option, thrown before any fork; an accepted one shuts down in time with no timer overflow and no SIGKILL of a worker that exits in 100 ms', () => {
    const values = [...oddValues.filter(plain), ...fc.sample(anyValue.filter(plain), { numRuns: 6, seed: 14 })]
    // (a valid but large `workers` would fork that many processes: only small counts are run)
    const forksMany = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 4
    const cases = ['killTimeout', 'startTimeout', 'workers'].flatMap((option) =>
      values.filter((v) => option !== 'workers' || !forksMany(v)).map((value) => ({ option, value })),
    )
    const outcomes = run(cases)
    expect(outcomes.length).toBe(cases.length)
    const failures: string[] = []
    for (const o of outcomes) {
      const v = typeof o.value === 'object' && o.value !== null && 'n' in o.value ? Number((o.value as { n: string }).n) : o.value
      const what = `${o.option}: ${decodeShow(o.value)}`
      const good =
        o.option === 'workers'
          ? typeof v === 'number' && Number.isInteger(v) && v >= 1
          : typeof v === 'number' && Number.isFinite(v) && v >= 1 && v <= MAX_TIMER
      if (!good) {
        if (!o.threw) failures.push(`${what} accepted (shutdown ${o.ms} ms, worker SIGKILLed: ${o.killed}, ${o.overflow} TimeoutOverflowWarnings)`)
        else if (!o.typeError || !o.message?.includes(o.option)) failures.push(`${what} → ${o.message} (not a TypeError naming ${o.option})`)
        continue
      }
      if (o.threw) {
        failures.push(`${what} rejected: ${o.message}`)
        continue
      }
      if (o.hung) failures.push(`${what}: shutdown() did not settle in 5 s`)
      if (o.overflow) failures.push(`${what}: ${o.overflow} TimeoutOverflowWarnings`)
      if (o.option === 'killTimeout' && (v as number) >= 300 && o.killed)
        failures.push(`${what}: a worker that exits 100 ms after the drain message was SIGKILLed`)
    }
    expect(failures).toEqual([])
  })

  it("D14.12 signals and restartSignal: names the platform does not have (SIGTRM) and SIGKILL/SIGSTOP/SIGSEGV/SIGBUS/SIGILL/SIGFPE are TypeErrors naming the option; the platform's catchable signals are accepted", () => {
    const platform = Object.keys(os.constants.signals)
    const forbidden = ['SIGKILL', 'SIGSTOP', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE']
    const names = [
      ...new Set([
        'SIGTRM',
        'SIGTERN',
        'SIGUSR3',
        'SIGINFO',
        ...forbidden,
        ...fc.sample(fc.stringMatching(/^SIG[A-Z]{2,5}$/), { numRuns: 8, seed: 14 }),
        'SIGUSR2',
        'SIGWINCH',
        'SIGQUIT',
      ]),
    ]
    const cases = names.flatMap((s) => [
      { option: 'signals', value: [s] },
      { option: 'restartSignal', value: s },
    ])
    const outcomes = run(cases)
    const failures: string[] = []
    for (const o of outcomes) {
      const s = o.option === 'signals' ? ((o.value as string[])[0] as string) : (o.value as string)
      const good = platform.includes(s) && !forbidden.includes(s)
      if (good && o.threw) failures.push(`${o.option}: ${s} rejected: ${o.message}`)
      if (!good && !o.threw) failures.push(`${o.option}: ${s} accepted (${platform.includes(s) ? 'must not be caught' : 'not a signal of this platform'})`)
      if (!good && o.threw && (!o.typeError || !o.message?.includes(o.option))) failures.push(`${o.option}: ${s} → ${o.message}`)
    }
    expect(failures).toEqual([])
  })
})
