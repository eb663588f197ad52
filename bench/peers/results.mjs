// Renders bench/RESULTS.md from the results object of run.mjs (also kept as bench/results.json).
import { fmtMs, fmtRatio } from '../lib/measure.mjs'
import { table } from '../lib/report.mjs'

const MARK = { pass: '✅', fail: '❌', 'n/a': '—' }
const WORD = { pass: 'pass', fail: 'fail', 'n/a': 'not offered' }
/** The peers quiesce is compared with: not bare Node, not quiesce on Fastify. */
const isPeer = (key) => !['quiesce', 'bare', 'fastify+quiesce'].includes(key)

export function renderResults(r) {
  const libs = r.libraries
  const label = (key) => libs.find((l) => l.key === key)?.label ?? key
  const out = []
  const p = (s = '') => out.push(s)
  p('# quiesce vs the peers (`pnpm bench:peers`)')
  p()
  p(
    `Command: \`pnpm bench:peers\` (runs \`node bench/peers/run.mjs\`) — ${r.date.slice(0, 10)}, ${r.machine}; ${r.seconds} s; load average ${r.loadAverage?.start?.[0]} at the start, ${r.loadAverage?.end?.[0]} at the end.`,
  )
  p()
  p(
    `Each library runs in its own server child process, wired the way its README shows (last table), on a bare \`node:http\` server (Fastify's own rows: a Fastify app). The drain starts with a real SIGTERM; clients are raw HTTP/1.1 bytes over loopback, in the parent process. Every library that has a shutdown time limit gets ${r.scenarioTimeoutMs / 1000} s (1 s in the D6 rows). A scenario gives up 8 s after the signal.`,
  )
  for (const s of r.skipped ?? []) p(`\nNot in this run: ${s.label} — ${s.why}.`)
  p()

  if (Object.keys(r.scenarios).length > 0) {
    p('## Contract scenarios')
    p()
    p('✅ pass · ❌ fail · — not offered by the library. What was observed is in the tables below the matrix.')
    p()
    const head = ['promise', ...libs.map((l) => l.label)]
    const rows = r.rows.map((row) => [row.title, ...libs.map((l) => MARK[r.scenarios[row.id]?.[l.key]?.status] ?? '?')])
    rows.push(['**passed**', ...libs.map((l) => `**${r.rows.filter((row) => r.scenarios[row.id]?.[l.key]?.status === 'pass').length} / ${r.rows.length}**`)])
    p(table(head, rows))
    p()
    for (const row of r.rows) {
      p(`### ${row.title}`)
      p()
      p(
        table(
          ['library', 'result', 'observed'],
          libs.map((l) => {
            const x = r.scenarios[row.id]?.[l.key]
            return [l.label, x ? `${MARK[x.status]} ${WORD[x.status]}` : '?', x?.detail ?? '']
          }),
        ),
      )
      p()
    }
  }

  if (r.overhead) {
    const o = r.overhead
    const ownText = (key) =>
      o.own?.[key] ? `${o.own[key].usPerRequest.toFixed(2)} µs (${(o.own[key].share * 100).toFixed(1)} %)` : key === 'bare' || key === 'fastify' ? '—' : ''
    const row = (name, x, key) => [
      name,
      x.baseUsPerRequest.toFixed(1),
      x.usPerRequest.toFixed(1),
      fmtRatio(x.ratio),
      `${x.middleHalf[0].toFixed(2)}–${x.middleHalf[1].toFixed(2)}`,
      key ? ownText(key) : '',
    ]
    p('## Overhead: server CPU per request')
    p()
    p(
      `Each server runs in its own child process and measures its own \`process.cpuUsage()\` over ${o.count.toLocaleString('en')} keep-alive GETs (undici Pool, 16 connections), one server at a time, at full rate. Every round measures every server once, in an order rotated from round to round; each server runs in two processes that take turns (two runs of the same code can differ by several per cent for a process's whole life); ${o.rounds} rounds after a warm-up and two discarded rounds. The ratio is the median of the per-round ratios to bare \`node:http\` (and, for quiesce on Fastify, to plain Fastify); "middle half" is the 25th–75th percentile of those ratios. The A/A row is a second, identical bare server: its distance from 1 is this machine's noise. The last column does not depend on that noise: a V8 CPU profile taken inside the server over 10,000 requests, counting the samples whose nearest non-Node frame is the library's code (Node internals and dependencies the library calls count for it, the app's do not; the server's own \`emit\` that a library hands the request event on to, in which the app's listeners run, counts for Node, as it runs without the library too): the library's share of the samples on the CPU times the CPU the process used meanwhile, per request, and its share of the server's busy CPU. Samples are counted rather than weighted by their time deltas: on a shared machine a delta includes the time the process was descheduled. Aim for quiesce: ≤ 1.03× and no worse than the lightest peer.`,
    )
    p()
    const rows = []
    if (o.pairs['bare (A/A)']) rows.push(row('server.close(), an identical second server (A/A: noise)', o.pairs['bare (A/A)']))
    for (const l of libs) if (o.pairs[l.key]) rows.push(row(l.label, o.pairs[l.key], l.key))
    if (o.pairs['fastify+quiesce vs fastify']) rows.push(row('Fastify + @quiesce/fastify, vs plain Fastify', o.pairs['fastify+quiesce vs fastify']))
    p(table(['library', 'baseline µs / request', 'with the library, µs / request', 'ratio', 'middle half', "library's own code (profile)"], rows))
    p()
  }

  if (r.drain) {
    const d = r.drain
    p('## Drain time')
    p()
    p(
      `SIGTERM → server \`'close'\` (or the process's end) with ${d.idleSockets.toLocaleString('en')} idle keep-alive sockets (quiet for 200 ms, so past any idle grace), and the server's own CPU time over that span (the steadier number on a shared machine). Then 900 idle sockets plus 100 requests in flight that all end 1 s after the SIGTERM: time from the last response (its \`'finish'\` in the server) to \`'close'\`. Timed in the server process; one run each. Aim for quiesce: ≤ 5 ms after the last response.`,
    )
    p()
    const open8 = 'still open after 8 s'
    p(
      table(
        ['library', `${d.idleSockets.toLocaleString('en')} idle sockets`, 'server CPU', 'after the last response', 'in-flight completed'],
        libs.map((l) => {
          const { idle, inflight } = d.libs[l.key]
          const a = idle.error ? `error: ${idle.error}` : idle.ms == null ? open8 : fmtMs(idle.ms) + (idle.exited ? ' (process exit)' : '')
          const b = inflight.error
            ? `error: ${inflight.error}`
            : inflight.ms == null
              ? open8
              : fmtMs(Math.max(0, inflight.ms)) + (inflight.exited ? ' (process exit)' : '')
          return [l.label, a, idle.cpuMs == null ? '' : fmtMs(idle.cpuMs), b, inflight.completed == null ? '' : `${inflight.completed} / 100`]
        }),
      ),
    )
    p()
  }

  if (r.memory) {
    const m = r.memory
    const bare = m.libs.bare?.perConnection
    p('## Memory per idle connection')
    p()
    p(
      `\`heapUsed\` after two full GCs with ${m.connections.toLocaleString('en')} idle keep-alive connections open, minus before, per connection (\`--expose-gc\`). Node's own sockets and parsers are in the bare row; the difference is what the library keeps per connection.`,
    )
    p()
    p(
      table(
        ['library', 'heap bytes / connection', 'vs bare node:http'],
        libs.map((l) => {
          const x = m.libs[l.key]
          if (x.error) return [l.label, `error: ${x.error}`, '']
          const delta = x.perConnection - bare
          return [l.label, Math.round(x.perConnection).toLocaleString('en'), l.key === 'bare' ? 'baseline' : `${delta >= 0 ? '+' : ''}${Math.round(delta)}`]
        }),
      ),
    )
    p()
  }

  p('## Where quiesce is behind')
  p()
  const behind = whereBehind(r, label)
  for (const line of behind.length ? behind : ['Nowhere in this run.']) p(`- ${line}`)
  p()
  p('## How each library is wired')
  p()
  p(
    table(
      ['library', 'version', 'setup (see bench/lib/server.mjs)'],
      libs.map((l) => [l.label, l.version, `\`${l.setup}\``]),
    ),
  )
  p()
  return `${out.join('\n')}\n`
}

/** Every place where quiesce misses an aim or a peer does better, in plain words. */
export function whereBehind(r, label) {
  const lines = []
  for (const row of r.rows) {
    const x = r.scenarios[row.id]?.quiesce
    if (x && x.status !== 'pass') lines.push(`Scenario "${row.title}": ${WORD[x.status]} — ${x.detail}.`)
  }
  const peers = r.libraries.map((l) => l.key).filter(isPeer)
  if (r.overhead) {
    const o = r.overhead.pairs
    const q = o.quiesce?.ratio
    const aa = o['bare (A/A)']
    const noise = aa
      ? ` (two identical servers measured ${fmtRatio(aa.ratio)}, middle half ${aa.middleHalf[0].toFixed(2)}–${aa.middleHalf[1].toFixed(2)}: differences of that size are noise here)`
      : ''
    const lightest = peers
      .filter((k) => !k.startsWith('fastify') && o[k])
      .map((k) => [k, o[k].ratio])
      .sort((a, b) => a[1] - b[1])[0]
    if (q > 1.03) lines.push(`CPU per request: ${fmtRatio(q)} bare node:http, above the 1.03× aim${noise}.`)
    if (lightest && q > lightest[1]) lines.push(`CPU per request: ${fmtRatio(q)} vs ${fmtRatio(lightest[1])} for ${label(lightest[0])}, the lightest peer.`)
    const qf = o['fastify+quiesce vs fastify']?.ratio
    if (qf > 1.03) lines.push(`CPU per request on Fastify: ${fmtRatio(qf)} plain Fastify, above the 1.03× aim.`)
    const own = r.overhead.own ?? {}
    const qo = own.quiesce
    const lighter = peers.filter((k) => own[k] && qo && own[k].usPerRequest < qo.usPerRequest).map((k) => `${label(k)} ${own[k].usPerRequest.toFixed(2)} µs`)
    if (qo && qo.share > 0.03)
      lines.push(
        `Own code on the request path (CPU profile): quiesce ${qo.usPerRequest.toFixed(2)} µs per request, ${(qo.share * 100).toFixed(1)} % of a hello-world server's CPU — above the 3 % the aim allows.`,
      )
    if (lighter.length)
      lines.push(`Own code on the request path (CPU profile): lighter than quiesce's ${qo.usPerRequest.toFixed(2)} µs: ${lighter.join(', ')}.`)
    const fo = own['fastify+quiesce']
    if (fo && fo.share > 0.03)
      lines.push(
        `Own code on the request path on Fastify (CPU profile): ${fo.usPerRequest.toFixed(2)} µs per request, ${(fo.share * 100).toFixed(1)} % of a hello-world Fastify server's CPU.`,
      )
  }
  if (r.drain) {
    const q = r.drain.libs.quiesce
    const best = peers
      .map((k) => [k, r.drain.libs[k]?.idle?.ms])
      .filter(([, v]) => v != null)
      .sort((a, b) => a[1] - b[1])[0]
    if (q?.idle?.ms != null && best && q.idle.ms > best[1]) {
      const cpu = (k) => r.drain.libs[k]?.idle?.cpuMs
      const cpuNote = cpu('quiesce') != null && cpu(best[0]) != null ? ` (server CPU ${fmtMs(cpu('quiesce'))} vs ${fmtMs(cpu(best[0]))})` : ''
      lines.push(
        `${r.drain.idleSockets.toLocaleString('en')} idle sockets: ${fmtMs(q.idle.ms)} vs ${fmtMs(best[1])} for ${label(best[0])}${cpuNote}. quiesce closes an idle socket only once it has been quiet for \`idleGrace\` (50 ms, D1: never at the instant a client may reuse it), where the peers destroy every socket at once; each socket also costs the server a little more CPU (quiesce's per-socket check that no byte of a next request has arrived, D1, D5).`,
      )
    }
    if (q?.inflight?.ms != null && q.inflight.ms > 5) lines.push(`After the last response: ${fmtMs(q.inflight.ms)}, above the 5 ms aim.`)
    const bestAfter = peers
      .map((k) => [k, r.drain.libs[k]?.inflight])
      .filter(([, v]) => v?.ms != null && v.completed === 100)
      .sort((a, b) => a[1].ms - b[1].ms)[0]
    if (q?.inflight?.ms != null && bestAfter && q.inflight.ms > bestAfter[1].ms)
      lines.push(
        `After the last response: ${fmtMs(q.inflight.ms)} vs ${fmtMs(Math.max(0, bestAfter[1].ms))} for ${label(bestAfter[0])} (among peers that completed all 100 requests).`,
      )
  }
  if (r.memory) {
    const q = r.memory.libs.quiesce?.perConnection
    const bare = r.memory.libs.bare?.perConnection
    // peers that keep nothing per connection (they do not track sockets) vs those that do
    const per = peers
      .filter((k) => !k.startsWith('fastify'))
      .map((k) => [k, r.memory.libs[k]?.perConnection])
      .filter(([, v]) => v != null)
    const untracked = per.filter(([, v]) => v - bare < 50)
    const tracking = per.filter(([, v]) => v - bare >= 50).sort((a, b) => a[1] - b[1])
    if (q != null && tracking[0] && q > tracking[0][1])
      lines.push(
        `Heap per idle connection: ${Math.round(q - bare)} bytes over bare Node vs ${Math.round(tracking[0][1] - bare)} for ${label(tracking[0][0])}, the lightest peer that tracks connections.`,
      )
    const one = untracked.length === 1
    if (q != null && untracked.length)
      lines.push(
        `Heap per idle connection: ${Math.round(q - bare)} bytes over bare Node, where ${untracked.map(([k]) => label(k)).join(' and ')} ${one ? 'keeps' : 'keep'} nothing per connection (${one ? 'it does' : 'they do'} not track connections, and ${one ? 'leaves' : 'leave'} keep-alive sockets to \`server.close()\`).`,
      )
  }
  return lines
}
