// `node bench/bulk.mjs [--sizes 1000,4000,10000,18000] [--runs R]`: closing N idle keep-alive
// sockets. quiesce's `shutdown()` with its default options (sockets quiet for 200 ms, past the
// 50 ms idleGrace) against bare `server.close()` + `closeAllConnections()`: wall time from the
// call to the server's 'close', and the server's own CPU (process.cpuUsage()) over the same span,
// per socket, against N. Median of R runs, quiesce and bare interleaved. The server child runs
// through `bash -c 'ulimit -n …; exec node …'` with the limit raised as far as this machine allows
// (the hard limit of `ulimit -Hn`): N is capped by it, in the server and in this process alike.
// Writes a table to stdout and the curves to bench/BULK.svg.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ServerChild } from './lib/child.mjs'
import { median } from './lib/measure.mjs'
import { epoch, openIdleConnections } from './lib/raw.mjs'
import { table } from './lib/report.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const hardLimit = () => Number(execFileSync('/bin/bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim())

const CASES = [
  { key: 'bare', name: 'bare `server.close()` + `closeAllConnections()`', variant: 'bare', how: 'close-all' },
  { key: 'quiesce', name: 'quiesce `shutdown()` (default options)', variant: 'quiesce', how: 'shutdown' },
  // a control: bare's close after the same 50 ms quiesce's idleGrace waits (the process's own
  // background work over a longer span: GC, the JIT's threads, counted by process.cpuUsage())
  { key: 'waited', name: 'bare, `closeAllConnections()` 50 ms after `close()`', variant: 'bare', how: 'close-all-after-50' },
]

async function closeIdle(c, count, node, ulimit) {
  const child = await ServerChild.start(c.variant, { keepAliveTimeout: 600_000 }, { node, ulimit })
  let conns = []
  try {
    const opened = await openIdleConnections(child.port, count)
    conns = opened.conns
    if (opened.failed > 0) throw new Error(`${c.variant}: ${opened.failed} of ${count} connections failed to open`)
    await sleep(200)
    child.send({ cmd: 'shutdown', how: c.how })
    const sentAt = epoch()
    const closed = await child.whenClosed(30_000)
    if (!closed) return { ms: null, cpuMs: null }
    const start = closed.shutdownAt ?? sentAt
    return { ms: closed.doneAt - start, cpuMs: closed.cpuUs / 1000 }
  } finally {
    for (const x of conns) x.destroy()
    await child.stop()
  }
}

export async function bulkRows({ sizes, runs = 3, node, log = () => {} } = {}) {
  const limit = hardLimit()
  const ulimit = limit
  const usable = sizes.filter((n) => n + 500 <= limit)
  const rows = []
  for (const n of usable) {
    const got = CASES.map(() => [])
    for (let r = 0; r < runs; r++) {
      for (const [k, c] of r % 2 ? [...CASES.entries()].reverse() : [...CASES.entries()]) got[k].push(await closeIdle(c, n, node, ulimit))
      log(`  ${n}: run ${r + 1}: ${CASES.map((c, k) => `${c.key} ${got[k].at(-1).ms?.toFixed(0)} ms / CPU ${got[k].at(-1).cpuMs?.toFixed(0)} ms`).join(', ')}`)
    }
    const sum = got.map((rs) => ({ ms: median(rs.map((x) => x.ms)), cpuMs: median(rs.map((x) => x.cpuMs)) }))
    const cpuRatios = got[1].map((q, i) => q.cpuMs / got[0][i].cpuMs)
    const waitedRatios = got[1].map((q, i) => q.cpuMs / got[2][i].cpuMs)
    rows.push({
      n,
      bare: sum[0],
      quiesce: sum[1],
      waited: sum[2],
      cpuRatio: median(cpuRatios),
      waitedRatio: median(waitedRatios),
      wallOver: sum[1].ms - sum[0].ms,
    })
  }
  return { rows, skipped: sizes.filter((n) => !usable.includes(n)), limit }
}

const us = (ms, n) => `${((ms * 1000) / n).toFixed(1)} µs`
export const bulkTable = ({ rows }) =>
  table(
    [
      'idle sockets',
      'bare: to close',
      'bare: server CPU',
      'quiesce: to close',
      'quiesce: server CPU',
      'CPU, quiesce / bare (median of paired runs)',
      'bare after a 50 ms wait: server CPU',
      'CPU, quiesce / bare after the same wait',
      'wall, quiesce − bare',
      'CPU per socket, bare / quiesce',
    ],
    rows.map((r) => [
      r.n.toLocaleString('en'),
      `${r.bare.ms.toFixed(0)} ms`,
      `${r.bare.cpuMs.toFixed(0)} ms`,
      `${r.quiesce.ms.toFixed(0)} ms`,
      `${r.quiesce.cpuMs.toFixed(0)} ms`,
      `${r.cpuRatio.toFixed(3)}×`,
      `${r.waited.cpuMs.toFixed(0)} ms`,
      `${r.waitedRatio.toFixed(3)}×`,
      `${r.wallOver >= 0 ? '+' : ''}${r.wallOver.toFixed(0)} ms`,
      `${us(r.bare.cpuMs, r.n)} / ${us(r.quiesce.cpuMs, r.n)}`,
    ]),
  )

/** Two panels (wall and CPU per socket against N, log scale of N), bare grey, quiesce green. Plain SVG. */
export function bulkSvg({ rows }, caption) {
  const W = 860
  const PW = 380
  const PH = 220
  const M = { l: 60, t: 50, b: 50 }
  const ns = rows.map((r) => r.n)
  const lx = (n) => Math.log10(n)
  const [x0, x1] = [lx(Math.min(...ns)) - 0.1, lx(Math.max(...ns)) + 0.1]
  const panel = (ox, title, pick) => {
    const ys = rows.flatMap((r) => [pick(r.bare, r.n), pick(r.quiesce, r.n), pick(r.waited, r.n)])
    const yMax = Math.max(...ys) * 1.15
    const X = (n) => ox + M.l + ((lx(n) - x0) / (x1 - x0)) * (PW - M.l - 10)
    const Y = (v) => M.t + PH - (v / yMax) * PH
    const out = [`<text x="${ox + M.l}" y="${M.t - 20}" class="t">${title}</text>`]
    out.push(
      `<line x1="${ox + M.l}" y1="${M.t + PH}" x2="${ox + PW - 10}" y2="${M.t + PH}" stroke="#666"/><line x1="${ox + M.l}" y1="${M.t}" x2="${ox + M.l}" y2="${M.t + PH}" stroke="#666"/>`,
    )
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4
      out.push(
        `<text x="${ox + M.l - 6}" y="${Y(v) + 4}" class="n" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text><line x1="${ox + M.l}" y1="${Y(v)}" x2="${ox + PW - 10}" y2="${Y(v)}" stroke="#eee"/>`,
      )
    }
    for (const n of ns) out.push(`<text x="${X(n)}" y="${M.t + PH + 16}" class="n" text-anchor="middle">${n.toLocaleString('en')}</text>`)
    out.push(`<text x="${ox + M.l + (PW - M.l) / 2}" y="${M.t + PH + 34}" class="n" text-anchor="middle">idle sockets (log scale)</text>`)
    for (const [key, colour] of [
      ['bare', '#8795a1'],
      ['waited', '#c9a227'],
      ['quiesce', '#1f7a6d'],
    ]) {
      const pts = rows.map((r) => `${X(r.n).toFixed(1)},${Y(pick(r[key], r.n)).toFixed(1)}`)
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`)
      for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${colour}"/>`)
    }
    return out.join('\n')
  }
  const perSocket = (ms, n) => (ms * 1000) / n
  const h = M.t + PH + 90
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="system-ui, sans-serif">
<style>.t{font-size:14px;font-weight:600}.n{font-size:11px;fill:#444}</style>
<rect width="100%" height="100%" fill="#fff"/>
${panel(0, 'wall time to close, µs per socket', (x, n) => perSocket(x.ms, n))}
${panel(PW + 60, 'server CPU, µs per socket', (x, n) => perSocket(x.cpuMs, n))}
<rect x="${M.l}" y="${h - 30}" width="12" height="4" fill="#8795a1"/><text x="${M.l + 18}" y="${h - 25}" class="n">bare close() + closeAllConnections()</text>
<rect x="${M.l + 230}" y="${h - 30}" width="12" height="4" fill="#c9a227"/><text x="${M.l + 248}" y="${h - 25}" class="n">bare, closeAllConnections() 50 ms later</text>
<rect x="${M.l + 480}" y="${h - 30}" width="12" height="4" fill="#1f7a6d"/><text x="${M.l + 498}" y="${h - 25}" class="n">quiesce shutdown(), default options (idleGrace 50 ms)</text>
<text x="${M.l}" y="${h - 8}" class="n">${caption.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>
</svg>
`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k, d) => (process.argv.includes(k) ? process.argv[process.argv.indexOf(k) + 1] : d)
  const sizes = arg('--sizes', '1000,4000,10000,18000,50000').split(',').map(Number)
  const runs = Number(arg('--runs', 3))
  console.log(`closing N idle sockets, Node ${process.version}, median of ${runs}`)
  const res = await bulkRows({ sizes, runs, log: (s) => console.log(s) })
  console.log(bulkTable(res))
  if (res.skipped.length) console.log(`skipped ${res.skipped.join(', ')}: the hard limit of open files (ulimit -Hn) is ${res.limit}`)
  const file = fileURLToPath(new URL('./BULK.svg', import.meta.url))
  writeFileSync(file, bulkSvg(res, `node bench/bulk.mjs — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, median of ${runs} runs`))
  console.log(`written ${file}`)
}
