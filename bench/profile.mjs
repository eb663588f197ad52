// `node bench/profile.mjs [--node <path>] [--runs N]`: quiesce's own µs per request on the request
// path, from a V8 CPU profile inside each server (bare node:http, Express, Koa, Fastify), with the
// library frames it is spent in. Each figure is the median over `runs` fresh server processes,
// interleaved target by target. Prints a table (and returns rows to callers).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { libraryShare, median } from './lib/measure.mjs'
import { findFastifyAdapter, table } from './lib/report.mjs'

/** Where every server process writes its raw V8 profile (gitignored): flame graphs in Chrome DevTools or speedscope. */
const PROFILE_DIR = fileURLToPath(new URL('./profiles', import.meta.url))

export async function profileRows({ node = process.execPath, runs = 3, count = 20_000, log = () => {} } = {}) {
  const fastify = await findFastifyAdapter()
  const targets = [
    { name: 'node:http + `graceful()`', variant: 'quiesce' },
    { name: 'Express 5 + `@quiesce/express`', variant: 'express+quiesce' },
    { name: 'Koa 3 + `@quiesce/koa`', variant: 'koa+quiesce' },
  ]
  if (fastify.spec) targets.push({ name: 'Fastify 5 + `@quiesce/fastify`', variant: 'fastify+quiesce' })
  process.env.BENCH_PROFILE_DIR ??= PROFILE_DIR
  const got = targets.map(() => [])
  for (let r = 0; r < runs; r++) {
    for (const [i, t] of targets.entries()) {
      got[i].push(await libraryShare(t.variant, { count, config: { fastifyModule: fastify.spec }, node }))
      log(`  ${t.variant} run ${r + 1}: ${got[i].at(-1).usPerRequest.toFixed(3)} µs`)
    }
  }
  return targets.map((t, i) => {
    const us = got[i].map((g) => g.usPerRequest)
    const best = got[i].find((g) => g.usPerRequest === median(us)) ?? got[i][0]
    return { name: t.name, us: median(us), all: us, share: median(got[i].map((g) => g.share)), top: best.top }
  })
}

export function nodeVersion(node) {
  return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k, d) => {
    const i = process.argv.indexOf(k)
    return i < 0 ? d : process.argv[i + 1]
  }
  const node = arg('--node', process.execPath)
  const runs = Number(arg('--runs', 3))
  console.log(`quiesce's own code per request, Node ${nodeVersion(node)}, median of ${runs} processes`)
  const rows = await profileRows({ node, runs, log: (s) => console.log(s) })
  console.log(
    table(
      ['server', 'µs / request (median)', 'runs', 'share of busy CPU'],
      rows.map((r) => [r.name, r.us.toFixed(3), r.all.map((x) => x.toFixed(2)).join(', '), `${(r.share * 100).toFixed(1)} %`]),
    ),
  )
  for (const r of rows) {
    console.log(`\n${r.name}: where it goes (µs / request)`)
    for (const [f, us] of r.top) console.log(`  ${us.toFixed(3)}  ${f}`)
  }
}
