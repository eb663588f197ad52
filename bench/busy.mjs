// `node bench/busy.mjs [--runs R]`: 1,000 busy keep-alive clients (each sends its next request the
// moment the previous response completes, and stops at `Connection: close`), quiesce `shutdown()`
// 0.5 s after every client was answered once; R shutdowns without and R with a CPU hog on the
// machine (a child process spinning `while (true) {}`, started before the server, killed by its PID
// after). "Failed" = requests sent and never answered; "closed as idle" = quiesce's report.
import { spawn } from 'node:child_process'
import { busyDrain, median } from './lib/measure.mjs'
import { table } from './lib/report.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function startHog() {
  const hog = spawn(process.execPath, ['-e', 'const end = Date.now() + 600000; while (Date.now() < end) {}'], { stdio: 'ignore' })
  return hog
}

export async function busyRows({ runs = 10, count = 1000, node, log = () => {} } = {}) {
  const rows = []
  for (const hogged of [false, true]) {
    const got = []
    for (let i = 0; i < runs; i++) {
      const hog = hogged ? startHog() : null
      try {
        if (hog) await sleep(200)
        got.push(await busyDrain('quiesce', { count, trigger: { how: 'shutdown' }, giveUpMs: 10_000, node }))
      } finally {
        if (hog && hog.exitCode === null) {
          const gone = new Promise((r) => hog.once('exit', r))
          hog.kill('SIGKILL')
          await gone
        }
      }
      log(
        `  ${hogged ? 'with' : 'without'} CPU hog, run ${i + 1}: failed ${got.at(-1).failed}, closed as idle ${got.at(-1).closedIdle}, ${got.at(-1).ms?.toFixed(0)} ms`,
      )
    }
    rows.push({
      name: hogged ? 'with a CPU hog on the machine' : 'without a CPU hog',
      runs: got.length,
      failing: got.filter((r) => r.failed > 0).length,
      failed: got.map((r) => r.failed),
      idle: got.map((r) => r.closedIdle ?? '?'),
      ms: median(got.filter((r) => r.ms !== null).map((r) => r.ms)),
      during: median(got.map((r) => r.answeredDuringDrain)),
    })
  }
  return rows
}

export const busyTable = (rows) =>
  table(
    [
      'shutdown of 1,000 busy clients',
      'runs',
      'runs with failed requests',
      'failed requests (per run)',
      'closed as idle (per run)',
      'to close (median)',
      'answered during the drain (median)',
    ],
    rows.map((r) => [
      r.name,
      r.runs,
      `${r.failing} of ${r.runs}`,
      r.failed.join(', '),
      r.idle.join(', '),
      `${r.ms.toFixed(0)} ms`,
      Math.round(r.during).toLocaleString('en'),
    ]),
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--runs')
  const runs = i < 0 ? 10 : Number(process.argv[i + 1])
  console.log(`1,000 busy keep-alive clients, Node ${process.version}, ${runs} shutdowns without and with a CPU hog`)
  console.log(busyTable(await busyRows({ runs, log: (s) => console.log(s) })))
}
