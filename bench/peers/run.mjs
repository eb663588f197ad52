// `pnpm bench:peers`: quiesce side by side with bare Node and the peers, in one run.
//
//   1. Contract scenarios (D1–D7, D10) as black-box runs over real sockets, per library.
//   2. Overhead: server CPU per request vs bare node:http (interleaved rounds, medians).
//   3. Drain time: 10,000 idle keep-alive sockets; 1,000 sockets + 100 in-flight requests.
//   4. Memory: heap bytes per idle keep-alive connection (the same 10,000, after GC).
//
// Writes bench/RESULTS.md, bench/results.json and bench/RESULTS.svg (see chart.mjs).
// `--only=scenarios,overhead,drain` runs a subset (nothing is written then).
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { lightshipModule } from '../lib/lightship.mjs'
import { cpuRounds, fdLimit, idleDrain, inflightDrain, libraryShare, median, middleHalf, ratiosTo } from '../lib/measure.mjs'
import { findFastifyAdapter, machine } from '../lib/report.mjs'
import { renderChart } from './chart.mjs'
import { libraries } from './libraries.mjs'
import { renderResults } from './results.mjs'
import { runScenario, scenarios, TIMEOUT_MS } from './scenarios.mjs'

const only =
  process.argv
    .find((a) => a.startsWith('--only='))
    ?.slice(7)
    .split(',') ?? null
const parts = only ?? ['scenarios', 'overhead', 'drain']
const started = performance.now()
const log = (s = '') => process.stdout.write(`${s}\n`)

log(`quiesce vs the peers — ${machine()}`)
const load0 = os.loadavg()
const fastify = await findFastifyAdapter()
const config = { lightshipModule: await lightshipModule(), fastifyModule: fastify.spec }
const libs = libraries.filter((l) => !l.needsFastifyAdapter || fastify.spec)
const skipped = libraries.filter((l) => !libs.includes(l)).map((l) => ({ label: l.label, why: fastify.why }))
for (const s of skipped) log(`skipping ${s.label}: ${s.why}`)
const limit = fdLimit()

const results = {
  date: new Date().toISOString(),
  machine: machine(),
  node: process.version,
  fdLimit: limit,
  libraries: libs.map(({ key, label, version, setup }) => ({ key, label, version, setup })),
  skipped,
  scenarioTimeoutMs: TIMEOUT_MS,
  rows: scenarios.flatMap((s) => Object.entries(s.rows).map(([id, title]) => ({ id, title }))),
  scenarios: {},
  overhead: null,
  drain: null,
  memory: null,
}

// ── 1. contract scenarios ─────────────────────────────────────────────────────
if (parts.includes('scenarios')) {
  const jobs = libs.flatMap((lib) => scenarios.map((scenario) => ({ lib, scenario })))
  log(`\n1. contract scenarios: ${jobs.length} runs (${libs.length} libraries × ${scenarios.length} scenarios), 3 at a time…`)
  let done = 0
  const lane = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const rows = await runScenario(job.scenario, job.lib, config)
      for (const [row, result] of Object.entries(rows)) {
        results.scenarios[row] ??= {}
        results.scenarios[row][job.lib.key] = result
      }
      process.stdout.write(`  ${++done} done\r`)
    }
  }
  await Promise.all([lane(), lane(), lane()])
  log()
}

// ── 2. overhead ───────────────────────────────────────────────────────────────
if (parts.includes('overhead')) {
  const ROUNDS = 8
  const COUNT = 2000
  // plus an A/A copy of bare node:http: the ratio it gets is this machine's noise
  const servers = [...libs.map((l) => ({ name: l.key, variant: l.variant })), { name: 'bare (A/A)', variant: 'bare' }]
  log(`2. server CPU per request: ${servers.length} servers, ${ROUNDS} rounds × ${COUNT} requests…`)
  const cpu = await cpuRounds(servers, {
    rounds: ROUNDS,
    count: COUNT,
    config: { ...config, timeout: TIMEOUT_MS },
    onRound: (r) => process.stdout.write(`  round ${r}/${ROUNDS}\r`),
  })
  const summary = (name, baseline) => {
    const ratios = ratiosTo(cpu, name, baseline)
    return { usPerRequest: median(cpu.get(name)), baseUsPerRequest: median(cpu.get(baseline)), ratio: median(ratios), middleHalf: middleHalf(ratios) }
  }
  const pairs = Object.fromEntries(servers.filter((x) => x.name !== 'bare').map((x) => [x.name, summary(x.name, 'bare')]))
  if (cpu.has('fastify+quiesce')) pairs['fastify+quiesce vs fastify'] = summary('fastify+quiesce', 'fastify')
  // the library's own share of the server's CPU, from a V8 profile inside the server: noise mostly cancels out
  log("\n   …and each library's own share of the server's CPU (V8 CPU profile inside the server)")
  const own = {}
  for (const l of libs) {
    if (l.key === 'bare' || l.key === 'fastify') continue
    own[l.key] = await libraryShare(l.variant, { config: { ...config, timeout: TIMEOUT_MS } })
  }
  results.overhead = { rounds: ROUNDS, count: COUNT, pairs, own }
  log()
}

// ── 3. drain time and 4. memory ──────────────────────────────────────────────
if (parts.includes('drain')) {
  const IDLE = limit >= 10_100 ? 10_000 : 1000
  log(`3. drain time (${IDLE.toLocaleString('en')} idle sockets; 1,000 sockets + 100 in-flight requests) and heap per connection, per library…`)
  results.drain = { idleSockets: IDLE, libs: {} }
  results.memory = { connections: IDLE, libs: {} }
  const cfg = { ...config, timeout: TIMEOUT_MS }
  const firstLine = (err) =>
    err.message
      .split('\n')
      .find((l) => /Error|error/.test(l))
      ?.trim() ?? err.message.split('\n')[0]
  for (const l of libs) {
    const idle = await idleDrain(l.variant, { count: IDLE, quietMs: 200, heap: true, trigger: 'SIGTERM', config: cfg }).catch((err) => ({
      error: firstLine(err),
    }))
    const inflight = await inflightDrain(l.variant, { config: cfg }).catch((err) => ({ error: firstLine(err) }))
    results.drain.libs[l.key] = { idle, inflight }
    results.memory.libs[l.key] = idle.error ? { error: idle.error } : { perConnection: idle.heapPerConnection }
    log(
      `  ${l.label}: idle ${idle.error ?? `${idle.ms?.toFixed(0) ?? '—'} ms (server CPU ${idle.cpuMs?.toFixed(0) ?? '—'} ms), heap ${idle.heapPerConnection?.toFixed(0)} B/conn`}; after the last response ${inflight.error ?? `${inflight.ms?.toFixed(1) ?? '—'} ms (${inflight.completed}/100 completed)`}`,
    )
  }
}

results.seconds = Math.round((performance.now() - started) / 1000)
results.loadAverage = { start: load0.map((x) => +x.toFixed(2)), end: os.loadavg().map((x) => +x.toFixed(2)) }
const md = renderResults(results)
log(`\n${md}`)
if (only === null) {
  const at = (f) => fileURLToPath(new URL(`../${f}`, import.meta.url))
  writeFileSync(at('results.json'), `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(at('RESULTS.md'), md)
  writeFileSync(at('RESULTS.svg'), renderChart(results))
  log(`written bench/RESULTS.md, bench/RESULTS.svg, bench/results.json (${results.seconds} s)`)
} else {
  log(`(--only: nothing written; ${results.seconds} s)`)
}
