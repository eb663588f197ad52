import type { ResolvedOptions } from '../options.js'
import { EXIT_RESERVE } from './process.js'

export interface Limits {
  readonly timeout: number
  readonly hooksTimeout: number
  readonly budget: number | null
}

/**
 * D19: the supervisor's budget, when the process can know it (an explicit `budget`, or PM2's
 * `kill_timeout`, 1600 ms unless set). When `timeout + hooksTimeout` does not fit, both are scaled
 * down in proportion and a warning names the numbers.
 */
export function fitBudget(o: ResolvedOptions, env: NodeJS.ProcessEnv = process.env): Limits {
  let budget = o.budget
  let source = 'the budget option'
  if (budget === null && env.pm_id !== undefined) {
    const k = Number(env.kill_timeout)
    budget = Number.isFinite(k) && k > 0 ? k : 1600
    source = env.kill_timeout ? `PM2's kill_timeout` : `PM2's default kill_timeout`
  }
  if (budget === null) return { timeout: o.timeout, hooksTimeout: o.hooksTimeout, budget: null }
  const available = Math.max(0, budget - EXIT_RESERVE)
  const wanted = o.timeout + o.hooksTimeout
  if (wanted <= available) return { timeout: o.timeout, hooksTimeout: o.hooksTimeout, budget }
  const scale = wanted === 0 ? 0 : available / wanted
  const timeout = Math.floor(o.timeout * scale)
  const hooksTimeout = Math.floor(o.hooksTimeout * scale)
  o.logger?.warn(
    `quiesce: timeout (${o.timeout} ms) + hooksTimeout (${o.hooksTimeout} ms) = ${wanted} ms exceeds ${source} of ${budget} ms; ` +
      `draining with timeout ${timeout} ms and hooksTimeout ${hooksTimeout} ms so the process exits before it is killed`,
  )
  return { timeout, hooksTimeout, budget }
}

/**
 * The one place a drain's deadline is computed: `shutdown({ timeout })` overrides `timeout` for
 * this drain, shorter or longer — but never past what the supervisor's budget allows (D19).
 */
export function drainTimeout(requested: number | undefined, limits: Limits): number {
  if (requested === undefined) return limits.timeout
  return limits.budget === null ? requested : Math.min(requested, limits.timeout)
}
