// `pnpm bench:testing`: starting and stopping servers in a test suite (issue 6). 500 cycles of
// start → one keep-alive request → stop, with @quiesce/core/testing's listen()/close() and with
// the bare pattern (`server.close(cb)`, the client's keep-alive socket left to Node), plus the
// bare pattern when the client opened a second socket it never used (a browser's or a pool's
// pre-connect), which Node 20–24 never close (research T3). Wall time per cycle, medians.
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import { listen } from '@quiesce/core/testing'

const CYCLES = Number(process.env.CYCLES ?? 500)
const STUCK_LIMIT_MS = 2000 // a bare close still pending after this is reported as waiting

function get(port, agent) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      .on('error', reject)
  })
}

async function quiesceCycle(agent) {
  const app = await listen(http.createServer((_req, res) => res.end('ok')))
  await get(app.port, agent)
  const t0 = performance.now()
  await app.close()
  return performance.now() - t0
}

async function bareCycle(agent, preconnect) {
  const server = http.createServer((_req, res) => res.end('ok'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address()
  await get(port, agent)
  let idle
  if (preconnect) {
    idle = new (await import('node:net')).Socket()
    await new Promise((r) => idle.connect(port, '127.0.0.1', r))
  }
  const t0 = performance.now()
  const closed = await Promise.race([new Promise((r) => server.close(() => r(true))), new Promise((r) => setTimeout(r, STUCK_LIMIT_MS, false))])
  const ms = performance.now() - t0
  idle?.destroy()
  if (!closed) {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
  return { ms, closed }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const agent = new http.Agent({ keepAlive: true })

let t = performance.now()
const q = []
for (let i = 0; i < CYCLES; i++) q.push(await quiesceCycle(agent))
const quiesceTotal = performance.now() - t

t = performance.now()
const b = []
for (let i = 0; i < CYCLES; i++) b.push((await bareCycle(agent, false)).ms)
const bareTotal = performance.now() - t

const PRE = 5
const p = []
for (let i = 0; i < PRE; i++) p.push(await bareCycle(agent, true))
agent.destroy()

const lines = [
  `# Start and stop servers in tests (\`pnpm bench:testing\`) — node ${process.version}`,
  '',
  `${CYCLES} cycles of start → one keep-alive request → stop; the close is timed from the call to the server's 'close'.`,
  '',
  '| pattern | total | close, median per cycle |',
  '|---|---|---|',
  `| \`@quiesce/core/testing\` \`listen()\` / \`close()\` | ${(quiesceTotal / 1000).toFixed(2)} s | ${median(q).toFixed(2)} ms |`,
  `| bare \`server.close(cb)\` (Node ≥ 19 closes the idle keep-alive socket itself) | ${(bareTotal / 1000).toFixed(2)} s | ${median(b).toFixed(2)} ms |`,
  `| bare \`server.close(cb)\` with one pre-connected, unused socket (${PRE} cycles) | — | ${p.every((x) => !x.closed) ? `still waiting after ${STUCK_LIMIT_MS / 1000} s every time (Node ${process.versions.node.split('.')[0]} leaves pre-request sockets open)` : `${median(p.map((x) => x.ms)).toFixed(2)} ms`} |`,
]
console.log(lines.join('\n'))
writeFileSync(new URL('./TESTING.md', import.meta.url), `${lines.join('\n')}\n\nCommand: \`pnpm bench:testing\`\n`)
console.log('written bench/TESTING.md')
