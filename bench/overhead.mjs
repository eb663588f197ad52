// `pnpm bench`: what quiesce costs on the request path, and how fast it shuts down.
//
//   1. Server CPU per request, bare node:http vs the same server with graceful(), and each
//      framework with and without its adapter (interleaved rounds, medians, paired ratios).
//   2. shutdown() → server 'close' with 1,000 and 10,000 idle keep-alive sockets, vs bare
//      server.close() + closeAllConnections().
//   3. shutdown() → 'close' with 1,000 busy keep-alive clients, vs bare server.close().
//
// Each server runs in its own child process and measures itself (process.cpuUsage(), its own
// clock); the load comes from this process over loopback. Results: stdout and bench/BENCH.md.
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { busyDrain, cpuRounds, fdLimit, fmtMs, fmtRatio, idleDrain, libraryShare, median, middleHalf, ratiosTo } from './lib/measure.mjs'
import { findFastifyAdapter, machine, table } from './lib/report.mjs'

const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 3 : 12
const COUNT = quick ? 1000 : 2000
const REPEAT = quick ? 1 : 3
const started = performance.now()
const load0 = os.loadavg()[0]
const log = (s = '') => process.stdout.write(`${s}\n`)
const md = []
const out = (s = '') => {
  log(s)
  md.push(s)
}

log(`quiesce benchmarks — ${machine()}`)
const limit = fdLimit()
const fdNote =
  limit >= 10_000 + 100
    ? `ulimit -n is ${limit}: enough for 10,000 sockets in each process (server child and load generator).`
    : `ulimit -n is ${limit}: too low for 10,000 sockets per process — the 10,000-socket rows are skipped (raise it with \`ulimit -n 20000\`).`
log(fdNote)

// ── 1. CPU per request ───────────────────────────────────────────────────────
const fastify = await findFastifyAdapter()
const pairs = [
  // A/A: a second, identical bare server; the ratio it gets is this machine's noise
  { name: 'bare node:http, A/A (an identical second server: the noise floor)', baseline: 'bare', variant: 'bare' },
  { name: 'node:http + `graceful()`', baseline: 'bare', variant: 'quiesce' },
  { name: 'Express 5 + `@quiesce/express`', baseline: 'express', variant: 'express+quiesce' },
  { name: 'Koa 3 + `@quiesce/koa`', baseline: 'koa', variant: 'koa+quiesce' },
]
if (fastify.spec) pairs.push({ name: 'Fastify 5 + `@quiesce/fastify`', baseline: 'fastify', variant: 'fastify+quiesce' })
const variants = [...new Set(pairs.map((p) => p.baseline))].map((v) => ({ name: v, variant: v }))
variants.push(...pairs.map((p) => ({ name: p.name, variant: p.variant })))
log(`\n1. server CPU per request: ${variants.length} servers, ${ROUNDS} rounds × ${COUNT} requests each…`)
const cpu = await cpuRounds(variants, {
  rounds: ROUNDS,
  count: COUNT,
  config: { fastifyModule: fastify.spec },
  onRound: (r) => process.stdout.write(`  round ${r}/${ROUNDS}\r`),
})
log('\n   …and quiesce\'s own share of each server\'s CPU, from a V8 CPU profile inside the server')
const cpuRows = []
for (const p of pairs) {
  const ratios = ratiosTo(cpu, p.name, p.baseline)
  const [lo, hi] = middleHalf(ratios)
  const own = p.variant === p.baseline ? null : await libraryShare(p.variant, { config: { fastifyModule: fastify.spec } })
  cpuRows.push([
    p.name,
    median(cpu.get(p.baseline)).toFixed(1),
    median(cpu.get(p.name)).toFixed(1),
    fmtRatio(median(ratios)),
    `${lo.toFixed(2)}–${hi.toFixed(2)}`,
    own ? `${own.usPerRequest.toFixed(2)} µs (${(own.share * 100).toFixed(1)} %)` : '',
  ])
}
out('## 1. Server CPU per request')
out()
out(`Each server runs in its own child process and measures its own \`process.cpuUsage()\` over ${COUNT.toLocaleString('en')} keep-alive GETs (undici Pool, 16 connections), one server at a time, at full rate. Every round measures every server once, in an order rotated from round to round; each server runs in two processes that take turns (two runs of the same code can differ by several per cent for a process's whole life); ${ROUNDS} rounds after ${(3 * COUNT).toLocaleString('en')} warm-up requests per process and two discarded rounds. The ratio is the median of the per-round ratios to the same server without quiesce; "middle half" is the 25th–75th percentile of those ratios. The A/A row (a second, identical bare server) shows what noise looks like on this shared machine. The last column does not depend on that noise: a V8 CPU profile taken inside the server over 10,000 requests, counting the samples whose nearest non-Node frame is quiesce's code (Node internals that quiesce calls count for it, the app's do not): quiesce's µs per request and its share of the server's busy CPU. For a hello-world route that share is the whole overhead; with real handlers it shrinks in proportion. Aim: ≤ 1.03×.`)
out()
out(table(['server', 'without, µs / request', 'with, µs / request', 'ratio', 'middle half', "quiesce's own code (profile)"], cpuRows))
if (!fastify.spec) out(`\nFastify row skipped: ${fastify.why}.`)
out()

// ── 2. idle keep-alive sockets ───────────────────────────────────────────────
const sizes = limit >= 10_100 ? [1000, 10_000] : [1000]
const idleCases = [
  { name: 'bare `server.close()` + `closeAllConnections()` (baseline)', variant: 'bare', trigger: { how: 'close-all' } },
  { name: 'bare `server.close()` alone', variant: 'bare', trigger: { how: 'close' } },
  { name: 'quiesce `shutdown()`, sockets quiet for 200 ms (past idleGrace)', variant: 'quiesce', trigger: { how: 'shutdown' }, vs: true },
  { name: 'quiesce `shutdown()` right after a response on every socket (default idleGrace, 50 ms)', variant: 'quiesce', trigger: { how: 'shutdown' }, touch: true, vs: true },
]
log(`\n2. shutdown with idle keep-alive sockets (${sizes.join(' and ')}; ${REPEAT} interleaved runs each)…`)
const idleRows = []
for (const count of sizes) {
  const runs = idleCases.map(() => [])
  for (let i = 0; i < REPEAT; i++) {
    for (const [k, c] of idleCases.entries()) runs[k].push(await idleDrain(c.variant, { count, quietMs: 200, touch: c.touch, trigger: c.trigger }))
  }
  const summary = runs.map((rs) => ({
    ms: rs.every((r) => r.ms !== null) ? median(rs.map((r) => r.ms)) : null,
    cpuMs: rs.every((r) => r.cpuMs != null) ? median(rs.map((r) => r.cpuMs)) : null,
    resets: rs.reduce((n, r) => n + (r.resets ?? 0), 0),
  }))
  const base = summary[0]
  for (const [k, c] of idleCases.entries()) {
    const x = summary[k]
    idleRows.push([
      count.toLocaleString('en'),
      c.name,
      x.ms === null ? 'still open after 8 s' : fmtMs(x.ms),
      c.vs && x.ms !== null ? fmtRatio(x.ms / base.ms) : '',
      x.cpuMs === null ? '' : fmtMs(x.cpuMs),
      c.vs && x.cpuMs !== null ? fmtRatio(x.cpuMs / base.cpuMs) : '',
      x.resets,
    ])
    log(`  ${count} ${c.variant} ${c.trigger.how}${c.touch ? ' (just used)' : ''}: ${fmtMs(x.ms)}, server CPU ${fmtMs(x.cpuMs)}`)
  }
}
out('## 2. Shutdown with idle keep-alive sockets')
out()
out(`From the call to the server's \`'close'\` event, measured in the server process; median of ${REPEAT} interleaved runs. "Server CPU" is the server's own \`process.cpuUsage()\` over the same span: on a shared machine it is the steadier number. Each socket has completed one request and stayed quiet 200 ms, except in the last row of each size, where every socket has just answered a second request when \`shutdown()\` is called. quiesce closes a socket as idle once it has been quiet for \`idleGrace\` (50 ms by default, contract D1), and closes it gracefully: FIN, then it waits (bounded linger) for the client's FIN, so \`'close'\` also waits on the clients; \`closeAllConnections()\` destroys the sockets. Aim: ≤ 1.2× the baseline. ${fdNote}`)
out()
out(table(['sockets', 'shutdown', 'to close', 'vs baseline', 'server CPU', 'vs baseline', 'client resets'], idleRows))
out()

// ── 3. busy keep-alive clients ───────────────────────────────────────────────
const BUSY = 1000
log(`\n3. shutdown with ${BUSY} busy keep-alive clients…`)
const busyCases = [
  { name: 'bare `server.close()`', variant: 'bare', trigger: { how: 'close' }, giveUpMs: 5000, runs: 1 },
  { name: 'bare `server.close()` + `closeAllConnections()`', variant: 'bare', trigger: { how: 'close-all' }, runs: REPEAT },
  { name: 'quiesce `shutdown()`', variant: 'quiesce', trigger: { how: 'shutdown' }, runs: REPEAT },
]
const busyRows = []
for (const c of busyCases) {
  const runs = []
  for (let i = 0; i < c.runs; i++) runs.push(await busyDrain(c.variant, { count: BUSY, trigger: c.trigger, giveUpMs: c.giveUpMs ?? 8000 }))
  const ms = runs.every((r) => r.ms !== null) ? median(runs.map((r) => r.ms)) : null
  const during = median(runs.map((r) => r.answeredDuringDrain))
  busyRows.push([
    c.name,
    ms === null ? `still open after ${(c.giveUpMs ?? 8000) / 1000} s` : fmtMs(ms),
    runs.map((r) => r.failed).join(', '),
    Math.round(during).toLocaleString('en'),
    c.variant === 'quiesce' ? runs.map((r) => r.closedIdle ?? '?').join(', ') : '',
  ])
  log(`  ${c.variant} ${c.trigger.how}: ${fmtMs(ms)}, failed ${runs.map((r) => r.failed).join(', ')}`)
}
out(`## 3. Shutdown with ${BUSY.toLocaleString('en')} busy keep-alive clients`)
out()
out(`Each client sends its next request the moment the previous response completes, and stops when a response says \`Connection: close\` (as a correct client does); the shutdown comes 0.5 s after every client has been answered once. "Failed" = requests sent and never answered (reset, or closed before the response), per run. "Closed as idle" = quiesce's report (\`socketsClosedIdle\`): busy sockets it judged idle (quiet ≥ \`idleGrace\` with no byte read). Time measured in the server process; median of the runs.`)
out()
out(table(['shutdown', 'to close', 'failed requests (per run)', 'answered during the drain', 'closed as idle (per run)'], busyRows))
out()

const took = (performance.now() - started) / 1000
log(`\ndone in ${took.toFixed(0)} s`)
const header = [
  '# quiesce benchmarks (`pnpm bench`)',
  '',
  `Command: \`pnpm bench\` (builds the packages, then runs \`node bench/overhead.mjs\`${quick ? ' --quick' : ''}) — ${new Date().toISOString().slice(0, 10)}, ${machine()}; ${took.toFixed(0)} s; load average ${load0.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end.`,
  '',
  'Every server runs in its own child process and measures itself; the load generator is the parent process, over loopback, on the same 2 cores.',
  '',
]
const file = fileURLToPath(new URL('./BENCH.md', import.meta.url))
if (!quick) writeFileSync(file, `${[...header, ...md].join('\n')}\n`)
log(quick ? '(--quick: BENCH.md not written)' : `written ${file}`)
