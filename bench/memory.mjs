// `node bench/memory.mjs [--count N] [--runs R]`: heap per idle keep-alive connection and per
// in-flight request, quiesce (graceful(server), default options) minus bare node:http, at N of
// each (10,000 by default). heapUsed after two full GCs (--expose-gc), with the N connections
// open, minus before them, divided by N; median of R interleaved runs, each in fresh processes.
//   idle:                      every connection has completed one request and stays open
//   in flight, signal not read: every connection has a request whose handler waits (a timer)
//   in flight, signal read:     the same, and the handler reads requestSignal(req) and listens to it
import { ServerChild } from './lib/child.mjs'
import { median } from './lib/measure.mjs'
import { RawConn } from './lib/raw.mjs'
import { table } from './lib/report.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function openMany(port, count, path, wait) {
  const conns = []
  let next = 0
  const lane = async () => {
    while (next < count) {
      next++
      const c = await RawConn.connect(port)
      if (c.error) throw new Error(`connection refused: ${c.error.code}`)
      c.get(path)
      if (wait && !(await c.until(() => c.responses.length === 1, 10_000))) throw new Error('no response')
      conns.push(c)
    }
  }
  await Promise.all(Array.from({ length: 200 }, lane))
  return conns
}

const KINDS = [
  { name: 'idle keep-alive connection', path: '/', wait: true },
  { name: 'in-flight request, signal not read', path: '/slow?ms=600000', wait: false },
  { name: 'in-flight request, `requestSignal(req)` read', path: '/hang', wait: false },
]

async function heapPer(variant, kind, count, node) {
  const child = await ServerChild.start(variant, { keepAliveTimeout: 600_000 }, { gc: true, node })
  let conns = []
  try {
    // warm up the path (lazy allocations, parser pool) before the baseline
    const warm = await openMany(child.port, 50, kind.path, kind.wait)
    await sleep(kind.wait ? 0 : 200)
    for (const c of warm) c.destroy()
    await sleep(300)
    const before = (await child.request('heap', 'heap')).bytes
    conns = await openMany(child.port, count, kind.path, kind.wait)
    await sleep(kind.wait ? 200 : 1000) // every request dispatched
    const after = (await child.request('heap', 'heap')).bytes
    return (after - before) / count
  } finally {
    for (const c of conns) c.destroy()
    await child.stop()
  }
}

export async function memoryRows({ count = 10_000, runs = 3, node, log = () => {} } = {}) {
  const rows = []
  for (const kind of KINDS) {
    const bare = []
    const q = []
    for (let r = 0; r < runs; r++) {
      bare.push(await heapPer('bare', kind, count, node))
      q.push(await heapPer('quiesce', kind, count, node))
      log(`  ${kind.name}: bare ${bare.at(-1).toFixed(0)} B, quiesce ${q.at(-1).toFixed(0)} B`)
    }
    const diffs = q.map((x, i) => x - bare[i])
    rows.push({ name: kind.name, bare: median(bare), quiesce: median(q), over: median(diffs), diffs })
  }
  return rows
}

export const memoryTable = (rows) =>
  table(
    ['per', 'bare node:http', 'with graceful()', 'quiesce over bare (median of paired runs)', 'runs'],
    rows.map((r) => [
      r.name,
      `${r.bare.toFixed(0)} B`,
      `${r.quiesce.toFixed(0)} B`,
      `${r.over >= 0 ? '+' : ''}${r.over.toFixed(0)} B`,
      r.diffs.map((d) => d.toFixed(0)).join(', '),
    ]),
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k, d) => (process.argv.includes(k) ? Number(process.argv[process.argv.indexOf(k) + 1]) : d)
  const count = arg('--count', 10_000)
  const runs = arg('--runs', 3)
  console.log(`heap per connection / request at ${count}, Node ${process.version}, median of ${runs}`)
  console.log(memoryTable(await memoryRows({ count, runs, log: (s) => console.log(s) })))
}
