import { HookError } from '../errors.js'
import { resolveHookOptions } from '../options.js'
import type { ForcedItem, HookOptions, HookReport, Logger, ShutdownHook } from '../types.js'
import { errorStack, errorText } from './report.js'

export interface HookEntry {
  readonly fn: ShutdownHook
  readonly name: string
  readonly timeout: number | null
}

export interface HookRun {
  readonly report: HookReport
  readonly error: HookError | null
}

const TIMED_OUT = Symbol('timed out')
const CUT = Symbol('cut')

/**
 * Runs one user hook guarded: a throw, a rejection or a hang past `limit` ms becomes a failed
 * report, never an exception for the caller (D8). The hook receives an AbortSignal that aborts
 * when its time is up, or when `cut` resolves (the drain forced: the deadline, a second signal,
 * D6, D9) with the words for why, so it can stop what it started.
 */
async function runHook(entry: HookEntry, limit: number, cut?: Promise<string>): Promise<HookRun> {
  const started = performance.now()
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let cutWhy = ''
  const done = (ok: boolean, timedOut: boolean, error: HookError | null): HookRun => {
    if (timer !== undefined) clearTimeout(timer)
    const report: HookReport = { name: entry.name, ok, timedOut, durationMs: Math.round(performance.now() - started) }
    if (error !== null) report.error = errorText(error.cause ?? error)
    return { report, error }
  }
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, limit), TIMED_OUT)
  })
  try {
    const racers: Array<Promise<unknown>> = [Promise.resolve().then(() => entry.fn(controller.signal)), timeout]
    if (cut !== undefined) {
      racers.push(
        cut.then((why) => {
          cutWhy = why
          return CUT
        }),
      )
    }
    const result = await Promise.race(racers)
    if (result === TIMED_OUT || result === CUT) {
      const ms = Math.round(performance.now() - started)
      const why = result === TIMED_OUT ? `within ${Math.round(limit)} ms` : `before ${cutWhy} (${ms} ms)`
      const err = new HookError(entry.name, true, `hook "${entry.name}" did not finish ${why}`)
      controller.abort(err)
      return done(false, true, err)
    }
    return done(true, false, null)
  } catch (cause) {
    return done(false, false, new HookError(entry.name, false, `hook "${entry.name}" failed: ${errorText(cause)}`, cause))
  }
}

/** Hooks one after the other (the list given in run order), each under its own limit, all under `overall` ms. */
export async function runHooksInOrder(entries: readonly HookEntry[], overall: number, cut?: Promise<string>): Promise<HookRun[]> {
  const runs: HookRun[] = []
  const deadline = performance.now() + overall
  let cutWhy: string | null = null
  void cut?.then((why) => {
    cutWhy = why
  })
  for (const entry of entries) {
    const remaining = deadline - performance.now()
    if (remaining <= 0 || cutWhy !== null) {
      const why = cutWhy ?? `the hooks' overall limit of ${Math.round(overall)} ms was used up`
      const err = new HookError(entry.name, true, `hook "${entry.name}" not run: ${why}`)
      runs.push({ report: { name: entry.name, ok: false, timedOut: true, durationMs: 0, error: err.message }, error: err })
      continue
    }
    runs.push(await runHook(entry, Math.min(entry.timeout ?? overall, remaining), cut))
  }
  return runs
}

/**
 * Hooks all at once (the announce-phase hooks), each under its own limit, all under `overall` ms;
 * one still running when `cut` resolves (the drain's deadline, a second signal) is reported timed out then.
 */
export function runHooksTogether(entries: readonly HookEntry[], overall: number, cut?: Promise<string>): Promise<HookRun[]> {
  return Promise.all(entries.map((e) => runHook(e, Math.min(e.timeout ?? overall, overall), cut)))
}

/** Adds a hook to a list (validated at the call, D14); returns the function that removes it. */
export function addHook(list: HookEntry[], hook: ShutdownHook, options: HookOptions | undefined): () => void {
  const o = resolveHookOptions(hook, options, `hook ${list.length + 1}`)
  const entry: HookEntry = { fn: hook, name: o.name, timeout: o.timeout }
  list.push(entry)
  return () => {
    const i = list.indexOf(entry)
    if (i !== -1) list.splice(i, 1)
  }
}

/** Each hook's report; a failed one is logged and named as forced (D8). */
export function hookReports(runs: readonly HookRun[], logger: Logger | null, forced: (item: ForcedItem) => void): HookReport[] {
  for (const run of runs) {
    if (run.error === null) continue
    logger?.error(`quiesce: ${run.error.message}${run.error.cause instanceof Error ? ` — ${errorStack(run.error.cause)}` : ''}`)
    forced({ kind: 'hook', name: run.report.name, timedOut: run.report.timedOut })
  }
  return runs.map((run) => run.report)
}
