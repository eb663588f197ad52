import type { ForcedItem, HookReport, ShutdownReason, ShutdownReport } from '../types.js'

export interface DrainCounts {
  completed: number
  aborted: number
  rejected: number
  idleClosed: number
}

export interface DrainOutcome {
  readonly reason: ShutdownReason
  readonly signal: string | undefined
  readonly durationMs: number
  readonly drainMs: number
  readonly timedOut: boolean
  readonly forcedBySignal: boolean
  readonly counts: Readonly<DrainCounts>
  readonly forced: ForcedItem[]
  readonly hooks: HookReport[]
}

/**
 * The report (D6, D18): `ok` when nothing was forced and no hook failed — idle sockets closed at the
 * deadline are not forced (D1), nor is an announce phase a second signal cut short (D9: exit 1 only
 * when something was cut or failed).
 */
export function buildReport(o: DrainOutcome): ShutdownReport {
  return {
    reason: o.reason,
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ok: o.forced.length === 0 && o.hooks.every((h) => h.ok),
    durationMs: Math.round(o.durationMs),
    drainMs: Math.round(o.drainMs),
    timedOut: o.timedOut,
    forcedBySignal: o.forcedBySignal,
    requestsCompleted: o.counts.completed,
    requestsAborted: o.counts.aborted,
    requestsRejected: o.counts.rejected,
    socketsClosedIdle: o.counts.idleClosed,
    socketsForced: o.forced.filter((f) => f.kind === 'socket' || f.kind === 'session').length,
    forced: o.forced,
    hooks: o.hooks,
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function describeForced(item: ForcedItem): string {
  switch (item.kind) {
    case 'request':
      return `${item.method} ${item.url} (${item.protocol}, running ${seconds(item.ageMs)})`
    case 'socket':
      return `${item.type} socket ${item.remote}`
    case 'session':
      return `HTTP/2 session ${item.remote} (${plural(item.streams, 'open stream')})`
    case 'hook':
      return `hook "${item.name}"${item.timedOut ? ' (timed out)' : ' (failed)'}`
  }
}

function describeHook(h: HookReport): string {
  if (h.ok) return `${h.name} ok (${seconds(h.durationMs)})`
  return `${h.name} ${h.timedOut ? 'TIMED OUT' : 'FAILED'} after ${seconds(h.durationMs)}${h.error ? `: ${h.error}` : ''}`
}

/** The final report as one log line (D18). */
export function reportLine(r: ShutdownReport): string {
  const cause = r.signal ? `${r.reason} ${r.signal}` : r.reason
  const parts = [
    `quiesce: shutdown (${cause}) ${r.ok ? (r.forcedBySignal ? 'drained (forced by a second signal; nothing was left to cut)' : 'drained') : r.forcedBySignal ? 'FORCED by a second signal' : r.timedOut ? 'FORCED at the deadline' : 'finished with failures'} in ${seconds(r.drainMs)}`,
    `${plural(r.requestsCompleted, 'request')} completed, ${r.requestsAborted} aborted, ${r.requestsRejected} rejected`,
    `${plural(r.socketsClosedIdle, 'idle socket')} closed, ${r.socketsForced} forced`,
  ]
  const forcedRequests = r.forced.filter((f) => f.kind !== 'hook')
  if (forcedRequests.length > 0) {
    const shown = forcedRequests.slice(0, 5).map(describeForced).join('; ')
    parts.push(`forced: ${shown}${forcedRequests.length > 5 ? `; and ${forcedRequests.length - 5} more` : ''}`)
  }
  if (r.hooks.length > 0) parts.push(`hooks: ${r.hooks.map(describeHook).join(', ')}`)
  return `${parts.join(' — ')} (total ${seconds(r.durationMs)})`
}

export function progressLine(inFlight: number, connections: number, remainingMs: number): string {
  return `quiesce: draining — ${plural(inFlight, 'request')} in flight, ${plural(connections, 'connection')} open, ${seconds(Math.max(0, remainingMs))} left`
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

export function errorStack(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`
  return String(err)
}
