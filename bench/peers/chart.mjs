// Draws bench/RESULTS.svg from the results of run.mjs: four horizontal bar panels (scenarios
// passed, CPU per request, drain time after the last response, heap per connection), one bar per
// library, quiesce highlighted. Plain SVG text, no chart library.
// Standalone: `node bench/peers/chart.mjs` redraws it from bench/results.json.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const W = 900
const LABEL = 230
const VALUE = 150
const BAR = W - LABEL - VALUE - 20
const ROW = 20
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const colour = (key) => (key === 'quiesce' || key === 'fastify+quiesce' ? '#1f7a6d' : key === 'bare' ? '#b8c2cc' : '#8795a1')

/**
 * One panel. `bars`: [{ key, label, value (0..1 of the bar width, or null), text }].
 * `marks`: vertical guide lines [{ at (0..1), text }].
 */
function panel(y, title, note, bars, marks = []) {
  const parts = [`<text x="0" y="${y + 14}" class="t">${esc(title)}</text>`, `<text x="0" y="${y + 30}" class="n">${esc(note)}</text>`]
  const top = y + 40
  bars.forEach((b, i) => {
    const by = top + i * ROW
    parts.push(`<text x="${LABEL - 8}" y="${by + 14}" class="l" text-anchor="end"${b.key === 'quiesce' ? ' font-weight="bold"' : ''}>${esc(b.label)}</text>`)
    if (b.value != null)
      parts.push(`<rect x="${LABEL}" y="${by + 3}" width="${Math.max(1, b.value * BAR).toFixed(1)}" height="${ROW - 6}" fill="${colour(b.key)}"/>`)
    parts.push(`<text x="${LABEL + (b.value ?? 0) * BAR + 6}" y="${by + 14}" class="v">${esc(b.text)}</text>`)
  })
  for (const m of marks) {
    const x = LABEL + m.at * BAR
    parts.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${top + bars.length * ROW}" stroke="#d64545" stroke-dasharray="3 3"/>`)
    parts.push(`<text x="${x + 3}" y="${top - 6}" class="n" fill="#d64545">${esc(m.text)}</text>`)
  }
  return { svg: parts.join('\n'), height: 40 + bars.length * ROW + 28 }
}

export function renderChart(r) {
  const libs = r.libraries
  const panels = []
  if (Object.keys(r.scenarios ?? {}).length) {
    const n = r.rows.length
    panels.push([
      'Contract scenarios passed',
      `D1–D7 and D10 as black-box runs over real sockets (${n} rows; "not offered" counts as not passed)`,
      libs.map((l) => {
        const k = r.rows.filter((row) => r.scenarios[row.id]?.[l.key]?.status === 'pass').length
        return { key: l.key, label: l.label, value: k / n, text: `${k} / ${n}` }
      }),
    ])
  }
  if (r.overhead?.own) {
    const own = r.overhead.own
    const max = Math.max(0.5, ...Object.values(own).map((x) => x.usPerRequest))
    panels.push([
      'Own code on the request path',
      'µs of CPU per request spent in the library, from a V8 CPU profile inside the server (hello-world route)',
      libs.map((l) => {
        const x = own[l.key]
        if (!x) return { key: l.key, label: l.label, value: null, text: 'no library code' }
        return { key: l.key, label: l.label, value: x.usPerRequest / max, text: `${x.usPerRequest.toFixed(2)} µs (${(x.share * 100).toFixed(1)} %)` }
      }),
    ])
  }
  if (r.drain) {
    const d = r.drain.libs
    const GIVE_UP = 8000
    // log scale, 0.1 ms … 8 s
    const at = (ms) => Math.max(0, Math.log10(Math.max(ms, 0.1) / 0.1) / Math.log10(GIVE_UP / 0.1))
    panels.push([
      'Drain: last response → server close',
      '1,000 sockets + 100 in-flight requests ending together (log scale, 0.1 ms … 8 s)',
      libs.map((l) => {
        const x = d[l.key]?.inflight
        if (!x || x.error) return { key: l.key, label: l.label, value: null, text: 'error' }
        if (x.ms == null) return { key: l.key, label: l.label, value: 1, text: 'still open after 8 s' }
        const cut = x.completed < 100 ? `, ${100 - x.completed} cut` : ''
        return { key: l.key, label: l.label, value: at(x.ms), text: `${x.ms < 10 ? Math.max(0, x.ms).toFixed(1) : Math.round(x.ms)} ms${cut}` }
      }),
      [{ at: at(5), text: '5 ms' }],
    ])
  }
  if (r.memory) {
    const m = r.memory.libs
    const max = Math.max(...libs.map((l) => m[l.key]?.perConnection ?? 0))
    panels.push([
      'Heap bytes per idle keep-alive connection',
      `${r.memory.connections.toLocaleString('en')} connections, after GC (Node's own share is the server.close() row)`,
      libs.map((l) => {
        const v = m[l.key]?.perConnection
        return { key: l.key, label: l.label, value: v == null ? null : v / max, text: v == null ? 'error' : `${Math.round(v).toLocaleString('en')} B` }
      }),
    ])
  }
  let y = 36
  const body = []
  for (const [title, note, bars, marks] of panels) {
    const p = panel(y, title, note, bars, marks)
    body.push(p.svg)
    y += p.height
  }
  const H = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="-10 0 ${W + 10} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>.t{font-size:15px;font-weight:600;fill:#1f2933}.n{font-size:11px;fill:#616e7c}.l{font-size:12px;fill:#1f2933}.v{font-size:11px;fill:#3e4c59}</style>
<rect x="-10" y="0" width="${W + 10}" height="${H}" fill="#ffffff"/>
<text x="0" y="20" font-size="17" font-weight="700" fill="#1f2933">quiesce vs the peers — ${esc(r.date.slice(0, 10))}, ${esc(r.machine.split(' (')[0])}</text>
${body.join('\n')}
</svg>
`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = (f) => fileURLToPath(new URL(`../${f}`, import.meta.url))
  writeFileSync(at('RESULTS.svg'), renderChart(JSON.parse(readFileSync(at('results.json'), 'utf8'))))
  process.stdout.write('written bench/RESULTS.svg\n')
}
