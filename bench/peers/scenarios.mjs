// The drain promises as black-box scenarios over real sockets. Each scenario starts a fresh server
// child for one library, plays its client part with raw HTTP/1.1 bytes, sends a real SIGTERM, and
// judges only what a client (and, for the signals, the handler) can observe. A scenario returns
// one or more rows: { status: 'pass' | 'fail' | 'n/a', detail }.
//
// Every wait is bounded: GIVE_UP_MS after the signal a server still open is reported as such.
import { ServerChild } from '../lib/child.mjs'
import { fmtMs } from '../lib/measure.mjs'
import { busyClients, epoch, RawConn } from '../lib/raw.mjs'
import { sleep } from '../lib/report.mjs'

export const GIVE_UP_MS = 8000
/** The shutdown time limit given to every library that has one (D6 runs with 1 s). */
export const TIMEOUT_MS = 3000

const pass = (detail) => ({ status: 'pass', detail })
const fail = (detail) => ({ status: 'fail', detail })
const notOffered = (detail) => ({ status: 'n/a', detail })
const s = (ms) => fmtMs(ms)
const conn = (r) => r.headers.connection ?? 'keep-alive'
const stillOpen = `still open ${GIVE_UP_MS / 1000} s after the signal`
const lost = (c) => (c.error ? `reset (${c.error.code})` : c.endedAt !== null ? 'closed (FIN) without an answer' : 'no answer')

/** Sends SIGTERM and resolves when the child has seen it (before the library's own handler ran). */
async function drainStart(child) {
  const sentAt = child.signal('SIGTERM')
  const m = await child.next('signal', 2000)
  return m?.at ?? sentAt
}

async function get(c, path, n, ms = GIVE_UP_MS) {
  c.get(path)
  await c.until(() => c.responses.length >= n, ms)
  return c.responses[n - 1] ?? null
}

export const scenarios = [
  {
    id: 'D1-idle',
    rows: { 'D1-idle': 'D1 idle keep-alive socket closed at drain start (no keepAliveTimeout wait)' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      if (!(await get(a, '/', 1))) return { 'D1-idle': fail('no answer before the drain') }
      await sleep(200) // quiet for longer than any idle grace
      const t0 = await drainStart(child)
      const closed = await child.whenClosed(GIVE_UP_MS)
      if (!closed) return { 'D1-idle': fail(stillOpen) }
      const ms = closed.doneAt - t0
      const how = closed.closedAt === null ? 'process exited' : 'server closed'
      return { 'D1-idle': ms <= 1000 ? pass(`${how} ${s(ms)} after the signal`) : fail(`${how} only ${s(ms)} after the signal`) }
    },
  },
  {
    id: 'D1-reuse',
    rows: { 'D1-reuse': 'D1 idle socket reused just as the drain starts: answered, not reset' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      const first = await get(a, '/', 1)
      if (!first) return { 'D1-reuse': fail('no answer before the drain') }
      const t0 = await drainStart(child)
      // a pooled client (or proxy) reuses its idle connection now: the request is already on its
      // way when the server learns of the drain
      const sentAt = epoch()
      const r = await get(a, '/', 2)
      const when = `sent ${s(sentAt - first.at)} after the previous answer, ${s(Math.max(0, sentAt - t0))} into the drain`
      if (!r) return { 'D1-reuse': fail(`request ${when}: ${lost(a)}`) }
      return { 'D1-reuse': pass(`request ${when}: answered ${r.status}, Connection: ${conn(r)}`) }
    },
  },
  {
    id: 'D2',
    rows: { D2: 'D2 in-flight request completes, carries Connection: close, socket closed right after' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      a.get('/slow?ms=600')
      await sleep(150)
      await drainStart(child)
      await a.until(() => a.responses.length >= 1, GIVE_UP_MS)
      const r = a.responses[0]
      if (!r) return { D2: fail(`in-flight request cut: ${lost(a)}`) }
      await a.until(() => a.endedAt !== null || a.closedAt !== null, GIVE_UP_MS)
      const end = a.endedAt ?? a.closedAt
      const after = end === null ? null : end - r.at
      const closing = `socket ${end === null ? `still open ${GIVE_UP_MS / 1000} s after the response` : `closed ${s(after)} after the response`}`
      const ok = r.status === 200 && /close/i.test(conn(r)) && after !== null && after <= 100
      return { D2: (ok ? pass : fail)(`${r.status}, Connection: ${conn(r)}; ${closing}`) }
    },
  },
  {
    id: 'D3',
    rows: { D3: 'D3 next request on a connection whose response said keep-alive before the drain: answered with Connection: close' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      // headers (keep-alive) go out before the drain; the body ends during it
      a.onResponse(() => {
        if (a.responses.length === 1) a.get('/') // the client reuses the connection at once, as promised
      })
      a.get('/stream?n=4&every=100')
      await sleep(150)
      await drainStart(child)
      await a.until(() => a.responses.length >= 2, GIVE_UP_MS)
      if (a.responses.length === 0) return { D3: fail(`the streaming response before it was cut: ${lost(a)}`) }
      const r = a.responses[1]
      if (!r) return { D3: fail(`next request: ${lost(a)}`) }
      await a.until(() => a.endedAt !== null || a.closedAt !== null, GIVE_UP_MS)
      const end = a.endedAt ?? a.closedAt
      const closing = end === null ? `socket still open ${GIVE_UP_MS / 1000} s later` : `socket closed ${s(end - r.at)} after it`
      const ok = /close/i.test(conn(r)) && end !== null && end - r.at <= 100
      return { D3: (ok ? pass : fail)(`answered ${r.status}, Connection: ${conn(r)}; ${closing}`) }
    },
  },
  {
    id: 'D4',
    rows: { D4: 'D4 new connection during the drain: refused or answered, never accepted then dropped' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      a.get('/slow?ms=1500') // keeps the drain going
      await sleep(100)
      await drainStart(child)
      await sleep(50)
      const b = await RawConn.connect(port)
      if (b.error)
        return {
          D4: b.error.code === 'ECONNREFUSED' ? pass('refused (ECONNREFUSED): the client can retry elsewhere') : fail(`connect failed: ${b.error.code}`),
        }
      const r = await get(b, '/', 1, 3000)
      b.destroy()
      a.destroy()
      if (!r) return { D4: fail(`accepted, then ${lost(b)}`) }
      return { D4: pass(`accepted and answered ${r.status}, Connection: ${conn(r)}`) }
    },
  },
  {
    id: 'D5',
    rows: { D5: 'D5 half-sent request headers do not hold the drain (closed in < 1 s)' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      a.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n') // and nothing more (slowloris)
      await sleep(100)
      const t0 = await drainStart(child)
      const closed = await child.whenClosed(GIVE_UP_MS)
      if (!closed) return { D5: fail(stillOpen) }
      const ms = closed.doneAt - t0
      const forced = ms >= TIMEOUT_MS - 50 ? ' (at the shutdown deadline)' : ''
      return { D5: (ms < 1000 ? pass : fail)(`${closed.closedAt === null ? 'process exited' : 'closed'} ${s(ms)} after the signal${forced}`) }
    },
  },
  {
    id: 'D6',
    timeout: 1000,
    rows: {
      'D6-deadline': 'D6 never-ending handler: the deadline (1 s) ends the drain',
      'D6-signal': 'D6 the handler is told of the deadline before the cut',
    },
    async run({ port, child, lib }) {
      const a = await RawConn.connect(port)
      a.get('/hang')
      await sleep(100)
      const t0 = await drainStart(child)
      const closed = await child.whenClosed(GIVE_UP_MS)
      await a.until(() => a.closedAt !== null, 1000)
      const abort = child.all('abort').find((m) => m.route === '/hang')
      let deadline
      if (!lib.deadline) deadline = notOffered(closed ? `no time limit; ended ${s(closed.doneAt - t0)} after the signal` : `no time limit: ${stillOpen}`)
      else if (!closed) deadline = fail(stillOpen)
      else {
        const ms = closed.doneAt - t0
        const how = closed.closedAt === null ? 'process exited' : 'server closed'
        // contract revision 3 (D6): the request signal aborts abortGrace (quiesce's default: 100 ms)
        // before the 1 s timeout, and this handler answers then; a library without a signal cuts at 1 s
        deadline = ms >= 850 && ms <= 1600 ? pass(`${how} ${s(ms)} after the signal`) : fail(`${how} ${s(ms)} after the signal`)
      }
      let signal
      if (!lib.deadlineSignal) signal = notOffered('no per-request shutdown signal')
      else if (!abort) signal = fail('the request signal never aborted')
      else {
        const r = a.responses[0]
        const told = `signal aborted ${s(abort.at - t0)} after the signal ("${abort.reason}")`
        const ok = /deadline/i.test(abort.reason) && r?.status === 503
        signal = (ok ? pass : fail)(`${told}; ${r ? `the handler answered ${r.status}` : 'its answer never reached the client'}`)
      }
      return { 'D6-deadline': deadline, 'D6-signal': signal }
    },
  },
  {
    id: 'D7-busy',
    rows: { 'D7-busy': 'D7 continuous keep-alive clients do not hold the drain; no request fails' },
    async run({ port, child }) {
      const busy = await busyClients(port, 4)
      try {
        await Promise.all(busy.lanes.map((l) => l.conn.until(() => l.conn.responses.length > 0, 5000)))
        await sleep(300)
        const before = busy.stats.answered
        const t0 = await drainStart(child)
        const closed = await child.whenClosed(GIVE_UP_MS)
        if (closed) await Promise.all(busy.lanes.map((l) => l.conn.until(() => l.conn.closedAt !== null, 2000)))
        const { failed, answered } = busy.stats
        const counts = `${(answered - before).toLocaleString('en')} answered during the drain, ${failed} failed`
        if (!closed) return { 'D7-busy': fail(`${stillOpen} (${counts})`) }
        const ms = closed.doneAt - t0
        return { 'D7-busy': (ms <= 1000 && failed === 0 ? pass : fail)(`closed ${s(ms)} after the signal; ${counts}`) }
      } finally {
        busy.destroy()
      }
    },
  },
  {
    id: 'D7-stream',
    rows: { 'D7-stream': 'D7 streaming response finishes; close follows it promptly (≤ 100 ms)' },
    async run({ port, child }) {
      const a = await RawConn.connect(port)
      a.get('/stream?n=10&every=50')
      await sleep(100)
      await drainStart(child)
      await a.until(() => a.responses.length >= 1, GIVE_UP_MS)
      const r = a.responses[0]
      if (!r) return { 'D7-stream': fail(`stream cut after ${a.partial?.chunks ?? 0} of 10 chunks: ${lost(a)}`) }
      const closed = await child.whenClosed(GIVE_UP_MS)
      if (!closed) return { 'D7-stream': fail(`complete; server ${stillOpen}`) }
      const after = closed.doneAt - r.at
      return {
        'D7-stream': (after <= 100 ? pass : fail)(
          `complete; ${closed.closedAt === null ? 'process exited' : 'server closed'} ${s(Math.max(0, after))} after the response`,
        ),
      }
    },
  },
  {
    id: 'D10-abort',
    rows: { 'D10-abort': 'D10 client disconnect aborts the request signal ("client closed")' },
    async run({ port, child, lib }) {
      if (!lib.clientSignal) return { 'D10-abort': notOffered(`no per-request signal (Node ${process.versions.node.split('.')[0]} has no req.signal)`) }
      const a = await RawConn.connect(port)
      a.get('/wait')
      await sleep(100)
      const t0 = epoch()
      a.destroy()
      const m = await child.next('abort', 1000)
      if (!m) return { 'D10-abort': fail('the signal did not abort within 1 s') }
      const ms = m.at - t0
      const said = /client/i.test(m.reason) ? '' : ' — the reason does not say the client left'
      return { 'D10-abort': (ms <= 50 && !said ? pass : fail)(`aborted ${s(Math.max(0, ms))} after the client left: "${m.reason}"${said}`) }
    },
  },
  {
    id: 'D10-listeners',
    rows: { 'D10-listeners': 'D10 no listener accumulates on a keep-alive socket (1,000 requests)' },
    async run({ port }) {
      const a = await RawConn.connect(port)
      const first = await get(a, '/listeners', 1)
      for (let i = 2; i <= 1001; i++) if (!(await get(a, '/', i, 5000))) return { 'D10-listeners': fail(`request ${i} not answered: ${lost(a)}`) }
      const last = await get(a, '/listeners', 1002)
      a.destroy()
      const n0 = Number(first?.body)
      const n1 = Number(last?.body)
      return { 'D10-listeners': (n1 === n0 ? pass : fail)(`${n0} listeners on the socket after 1 request, ${n1} after 1,001`) }
    },
  },
]

/** Runs one scenario against one library in a fresh server child; errors become failing rows. */
export async function runScenario(scenario, lib, extraConfig) {
  let child = null
  try {
    child = await ServerChild.start(lib.variant, { timeout: scenario.timeout ?? TIMEOUT_MS, ...extraConfig })
    return await scenario.run({ port: child.port, child, lib })
  } catch (err) {
    const out = {}
    for (const row of Object.keys(scenario.rows)) out[row] = fail(`harness error: ${err.message.split('\n')[0]}`)
    return out
  } finally {
    await child?.stop()
  }
}
