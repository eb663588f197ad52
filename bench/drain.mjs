// `node bench/drain.mjs [--runs N]`: "last in-flight response → server 'close'" over N shutdowns
// (SIGTERM, quiesce's default options): 900 idle keep-alive sockets + 100 in-flight requests, and
// 20 in-flight requests alone. Every request ends at the same moment, 200 ms after the SIGTERM.
// Measured in the server process (the last response's 'finish' to the server's 'close'); the
// server's last socket 'close' shows how much of it is the sockets' own close (the clients' FIN
// after ours) and how much comes after. Prints a table; `drainRows()` returns it to callers.
import { inflightDrain, median } from './lib/measure.mjs'
import { table } from './lib/report.mjs'

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

const SCENARIOS = [
  { name: '900 idle + 100 in-flight', idle: 900, inflight: 100 },
  { name: '20 in-flight alone', idle: 0, inflight: 20 },
]

export async function drainRows({ runs = 100, node, log = () => {} } = {}) {
  const got = SCENARIOS.map(() => [])
  // interleaved: scenario A, B, A, B… so that a busy moment of the machine hits both alike
  for (let i = 0; i < runs; i++) {
    for (const [k, s] of SCENARIOS.entries()) {
      const r = await inflightDrain('quiesce', { idle: s.idle, inflight: s.inflight, endAfterMs: 200, node })
      if (r.ms === null || r.completed !== s.inflight) log(`  ${s.name}: run ${i + 1} incomplete (${r.completed} completed, close ${r.ms})`)
      got[k].push(r)
    }
    if ((i + 1) % 10 === 0) log(`  ${i + 1}/${runs}`)
  }
  return SCENARIOS.map((s, k) => {
    const ok = got[k].filter((r) => r.ms !== null)
    const ms = ok.map((r) => r.ms)
    const sock = ok.filter((r) => r.socketMs != null).map((r) => r.socketMs)
    return {
      name: s.name,
      runs: got[k].length,
      failed: got[k].reduce((n, r) => n + (s.inflight - r.completed), 0),
      median: median(ms),
      p90: pct(ms, 0.9),
      p99: pct(ms, 0.99),
      max: Math.max(...ms),
      socketMedian: sock.length ? median(sock) : null,
      ourFinMedian: median(ok.map((r) => r.ourFinMs)),
      clientFinMedian: median(ok.map((r) => r.clientFinMs)),
      afterClientFinMedian: median(ok.map((r) => r.ms - r.clientFinMs)),
      afterSocketMedian: median(ok.filter((r) => r.socketMs != null).map((r) => r.ms - r.socketMs)),
    }
  })
}

export const drainTable = (rows) =>
  table(
    [
      'scenario',
      'shutdowns',
      "to 'close': median",
      '90th pct',
      '99th pct',
      'max',
      'our last FIN flushed (median)',
      "the clients' last FIN read (median)",
      "client FIN → 'close' (median)",
      'in-flight requests lost',
    ],
    rows.map((r) => [
      r.name,
      r.runs,
      `${r.median.toFixed(2)} ms`,
      `${r.p90.toFixed(2)} ms`,
      `${r.p99.toFixed(2)} ms`,
      `${r.max.toFixed(1)} ms`,
      `${r.ourFinMedian.toFixed(2)} ms`,
      `${r.clientFinMedian.toFixed(2)} ms`,
      `${r.afterClientFinMedian.toFixed(2)} ms`,
      r.failed,
    ]),
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--runs')
  const runs = i < 0 ? 100 : Number(process.argv[i + 1])
  console.log(`last in-flight response → server 'close', Node ${process.version}, ${runs} shutdowns each`)
  console.log(drainTable(await drainRows({ runs, log: (s) => console.log(s) })))
}
