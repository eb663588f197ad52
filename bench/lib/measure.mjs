// Measurement helpers shared by `pnpm bench` and `pnpm bench:peers`.
import { execFileSync } from 'node:child_process'
import { Pool } from 'undici'
import { ServerChild } from './child.mjs'
import { busyClients, epoch, openIdleConnections, RawConn } from './raw.mjs'

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const fmtMs = (ms) => (ms == null ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`)
export const fmtRatio = (r) => (r == null ? '—' : `${r.toFixed(3)}×`)

/** Sends `count` GETs over a keep-alive pool, `concurrency` at a time; bounded by `maxMs`. */
export async function load(port, { count, connections = 16, concurrency = 16, maxMs = 20_000, path = '/' }) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 })
  const until = performance.now() + maxMs
  let sent = 0
  let done = 0
  let failed = 0
  const lane = async () => {
    while (sent < count && performance.now() < until) {
      sent++
      try {
        const { body } = await pool.request({ path, method: 'GET' })
        await body.text()
        done++
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  await pool.close()
  return { done, failed }
}

/**
 * Server CPU per request. Each server child measures its own `process.cpuUsage()` over `count`
 * keep-alive GETs sent at full rate by this process, one server at a time. Every round measures
 * every variant once, in an order rotated from round to round (A B C, B C A, …); per-round ratios
 * (see `ratiosTo`) pair measurements taken seconds apart. Each variant runs in two processes that
 * take turns, round by round: two runs of the same code can differ by several per cent for the
 * whole life of a process (JIT decisions, memory layout, the core it lands on). After the warm-up,
 * two extra rounds are thrown away: the load generator itself is still warming up, and a slower
 * client changes how many requests the server handles per event-loop turn.
 * Returns, per variant name, the µs per request of every round.
 */
export async function cpuRounds(variants, { rounds, count, warmup = 3 * count, config = {}, onRound } = {}) {
  const children = new Map()
  const all = []
  try {
    for (const v of variants) {
      const pair = [await ServerChild.start(v.variant, config), await ServerChild.start(v.variant, config)]
      all.push(...pair)
      children.set(v.name, pair)
    }
    for (const c of all) await load(c.port, { count: warmup })
    const perRequest = new Map(variants.map((v) => [v.name, []]))
    for (let r = -2; r < rounds; r++) {
      const order = variants.map((_, i) => variants[(i + r + 2) % variants.length])
      for (const v of order) {
        const child = children.get(v.name)[(r + 2) % 2]
        await child.request('cpu-start', 'cpu-started')
        const { done, failed } = await load(child.port, { count })
        const { us } = await child.request('cpu-stop', 'cpu')
        if (failed > 0) throw new Error(`${v.name}: ${failed} requests failed during the CPU measurement`)
        if (r >= 0) perRequest.get(v.name).push(us / done)
      }
      if (r >= 0) onRound?.(r + 1)
    }
    return perRequest
  } finally {
    for (const c of all) await c.stop()
  }
}

/**
 * The library's own share of the server's CPU, from a V8 CPU profile taken inside the server over
 * `count` requests (after a warm-up): a ratio within one process, so the machine's noise mostly
 * cancels out. Returns { share, usPerRequest } (the library's µs per request).
 */
export async function libraryShare(variant, { count = 10_000, config = {}, node } = {}) {
  const child = await ServerChild.start(variant, config, { node })
  try {
    await load(child.port, { count: 6000 })
    await child.request('profile-start', 'profile-started')
    const { done } = await load(child.port, { count })
    const p = await child.request('profile-stop', 'profile', 30_000)
    return { share: p.share, usPerRequest: p.libraryUs / done, top: (p.top ?? []).map(([frame, us]) => [frame, us / done]) }
  } finally {
    await child.stop()
  }
}

/** Per-round ratios of `name` to `baseline` (same round). */
export function ratiosTo(cpu, name, baseline) {
  const b = cpu.get(baseline)
  return cpu.get(name).map((x, i) => x / b[i])
}

/** The middle half of a list (25th to 75th percentile): how far to trust its median. */
export function middleHalf(xs) {
  const r = [...xs].sort((a, b) => a - b)
  const at = (q) => r[Math.min(r.length - 1, Math.max(0, Math.round(q * (r.length - 1))))]
  return [at(0.25), at(0.75)]
}

/** `ulimit -n` of this shell (children inherit it): can this run hold `need` sockets per process? */
export function fdLimit() {
  try {
    return Number(execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())
  } catch {
    return NaN
  }
}

/**
 * Shutdown-to-close with `count` idle keep-alive connections (each has completed one request).
 * `quietMs`: how long the connections stay quiet before the shutdown; `touch`: one more request on
 * every connection right before it (so none has been quiet for long). `trigger`: `{ how }` for an
 * IPC `shutdown` message (the API call), or 'SIGTERM'. Returns ms from the trigger to the
 * server's 'close' (or the process's end), measured in the child; null when still open after `giveUpMs`.
 */
export async function idleDrain(variant, { count, quietMs, touch = false, heap = false, trigger, config = {}, giveUpMs = 8000 }) {
  // a long keepAliveTimeout (as behind a load balancer): every socket must still be open at the shutdown
  const child = await ServerChild.start(variant, { keepAliveTimeout: 120_000, ...config }, { gc: heap })
  let conns = []
  try {
    let heapBefore = 0
    if (heap) {
      // warm up the request path (lazy allocations, parser pool) before the baseline
      const warm = await openIdleConnections(child.port, 50)
      for (const c of warm.conns) c.destroy()
      await new Promise((r) => setTimeout(r, 300))
      heapBefore = (await child.request('heap', 'heap')).bytes
    }
    const opened = await openIdleConnections(child.port, count)
    conns = opened.conns
    if (opened.failed > 0) throw new Error(`${variant}: ${opened.failed} of ${count} connections failed to open`)
    // heap bytes per idle keep-alive connection: heapUsed after two full GCs, with them open, minus before
    const heapPerConnection = heap ? ((await child.request('heap', 'heap')).bytes - heapBefore) / count : null
    if (quietMs > 0) await new Promise((r) => setTimeout(r, quietMs))
    const open = conns.filter((c) => c.closedAt === null).length
    if (open < count) throw new Error(`${variant}: only ${open} of ${count} connections still open before the shutdown`)
    if (touch) {
      // every connection has just been used: the shutdown comes right after the last response
      await Promise.all(conns.map((c) => (c.get('/'), c.until(() => c.responses.length === 2, 10_000))))
    }
    const sentAt = trigger === 'SIGTERM' ? child.signal('SIGTERM') : (child.send({ cmd: 'shutdown', how: trigger.how }), epoch())
    const closed = await child.whenClosed(giveUpMs)
    if (!closed) return { ms: null, sentAt, heapPerConnection }
    const start = closed.shutdownAt ?? closed.signalAt ?? sentAt
    await Promise.all(conns.map((c) => c.until(() => c.closedAt !== null, 3000)))
    const resets = conns.filter((c) => c.error?.code === 'ECONNRESET').length
    return { ms: closed.doneAt - start, cpuMs: closed.cpuUs == null ? null : closed.cpuUs / 1000, resets, exited: closed.closedAt === null, heapPerConnection }
  } finally {
    for (const c of conns) c.destroy()
    await child.stop()
  }
}

/**
 * Shutdown-to-close with `count` busy keep-alive clients (each sends its next request as soon as
 * the previous response completes, and stops on `Connection: close`). Returns ms from the
 * trigger to 'close' (null: still open after `giveUpMs`), the requests that failed (sent but never
 * answered), and how many were answered during the drain.
 */
export async function busyDrain(variant, { count, loadMs = 500, trigger, config = {}, giveUpMs = 8000, node }) {
  const child = await ServerChild.start(variant, { keepAliveTimeout: 120_000, ...config }, { node })
  let busy = null
  try {
    busy = await busyClients(child.port, count)
    if (busy.stats.refused > 0) throw new Error(`${variant}: ${busy.stats.refused} of ${count} connections refused`)
    // every connection accepted and served at least once (none still waiting in the accept backlog)
    await Promise.all(busy.lanes.map((l) => l.conn.until(() => l.conn.responses.length > 0, 15_000)))
    await new Promise((r) => setTimeout(r, loadMs))
    const answeredBefore = busy.stats.answered
    const sentAt = trigger === 'SIGTERM' ? child.signal('SIGTERM') : (child.send({ cmd: 'shutdown', how: trigger.how }), epoch())
    const closed = await child.whenClosed(giveUpMs)
    // the client side sees the last FINs and resets a moment after the server's 'close'
    if (closed) await Promise.all(busy.lanes.map((l) => l.conn.until(() => l.conn.closedAt !== null, 3000)))
    const s = busy.stats
    const report = closed && variant.includes('quiesce') ? await child.next('report', 1000) : null // quiesce's ShutdownReport counters
    const out = {
      failed: s.failed,
      answeredDuringDrain: s.answered - answeredBefore,
      closeHeaders: s.closeHeaders,
      closedIdle: report?.socketsClosedIdle ?? null,
    }
    if (!closed) return { ms: null, ...out }
    return { ms: closed.doneAt - (closed.shutdownAt ?? closed.signalAt ?? sentAt), cpuMs: closed.cpuUs == null ? null : closed.cpuUs / 1000, ...out }
  } finally {
    busy?.destroy()
    await child.stop()
  }
}

/**
 * Drain time with `idle` idle keep-alive connections plus `inflight` requests that all end at the
 * same fixed moment, 1 s after the SIGTERM: ms from the last response (its 'finish' in the server)
 * to the server's 'close' (or the process's end). Also: how many in-flight requests completed.
 */
export async function inflightDrain(variant, { idle = 900, inflight = 100, endAfterMs = 1000, config = {}, giveUpMs = 8000, node } = {}) {
  const child = await ServerChild.start(variant, { keepAliveTimeout: 120_000, ...config }, { node })
  let conns = []
  const busy = []
  try {
    conns = (await openIdleConnections(child.port, idle)).conns
    const endAt = epoch() + 500 + endAfterMs
    for (let i = 0; i < inflight; i++) {
      const c = await RawConn.connect(child.port)
      if (c.error) throw new Error(`${variant}: in-flight connection refused`)
      c.get(`/until?at=${Math.round(endAt)}`)
      busy.push(c)
    }
    await new Promise((r) => setTimeout(r, Math.max(0, endAt - endAfterMs - epoch())))
    const sentAt = child.signal('SIGTERM')
    const closed = await child.whenClosed(giveUpMs)
    await Promise.all(busy.map((c) => c.until(() => c.closedAt !== null, 3000)))
    const completed = busy.filter((c) => c.responses.length === 1).length
    if (!closed) return { ms: null, completed, sentAt }
    // the last response's end as the server saw it; else (process gone before 'close') as the clients saw it
    const last = closed.lastFinish ?? Math.max(...busy.map((c) => c.responses[0]?.at ?? -Infinity))
    // where the time goes: the clients' last response, the server's last FIN as they saw it
    const clientLast = Math.max(...busy.map((c) => c.responses[0]?.at ?? -Infinity))
    const finLast = Math.max(...busy.map((c) => c.endedAt ?? -Infinity))
    return {
      ms: Number.isFinite(last) ? closed.doneAt - last : null,
      completed,
      exited: closed.closedAt === null,
      clientMs: clientLast - last,
      finMs: finLast - last,
      socketMs: closed.lastSocketClose == null ? null : closed.lastSocketClose - last,
      ourFinMs: closed.lastSocketFin - last,
      clientFinMs: closed.lastClientFin - last,
    }
  } finally {
    for (const c of [...conns, ...busy]) c.destroy()
    await child.stop()
  }
}
