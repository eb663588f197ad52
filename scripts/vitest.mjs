#!/usr/bin/env node
// Runs vitest (all projects, or the ones given with --project), then fails when any selected
// project ran zero tests: vitest ≥ 4 silently ignores a bare workspace file, and a run that
// collects nothing must never pass. Usage: node scripts/vitest.mjs [--project name …] [vitest args]
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, '.vitest-results', `results-${process.pid}.json`)
fs.mkdirSync(path.dirname(out), { recursive: true })
const args = process.argv.slice(2)
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs')
const r = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args], {
  cwd: root,
  stdio: 'inherit',
})

// the projects that were asked for (all of them when none was named)
const source = fs.readFileSync(path.join(root, 'vitest.workspace.ts'), 'utf8')
const all = [...source.matchAll(/name: '([^']+)', include: \['([^']+)'\]/g)].map((m) => ({ name: m[1], dir: m[2].split('/**')[0] }))
const named = args.flatMap((a, i) => (a === '--project' ? [args[i + 1]] : a.startsWith('--project=') ? [a.slice(10)] : []))
const wanted = named.length ? all.filter((p) => named.includes(p.name)) : all

let results
try {
  results = JSON.parse(fs.readFileSync(out, 'utf8'))
} catch {
  console.error('✗ vitest wrote no results')
  process.exit(r.status || 1)
}
const perProject = new Map(wanted.map((p) => [p.name, 0]))
for (const file of results.testResults ?? []) {
  const rel = path.relative(root, file.name).split(path.sep).join('/')
  const project = wanted.find((p) => rel.startsWith(p.dir + '/'))
  if (project) perProject.set(project.name, perProject.get(project.name) + (file.assertionResults?.length ?? 0))
}
console.log(`\ntests per project: ${[...perProject].map(([n, c]) => `${n} ${c}`).join(', ')} (node ${process.version})`)
const empty = [...perProject].filter(([, c]) => c === 0).map(([n]) => n)
if (empty.length) {
  console.error(`✗ no tests ran in: ${empty.join(', ')}`)
  process.exit(1)
}
if (results.numTotalTests === 0) {
  console.error('✗ zero tests ran')
  process.exit(1)
}
process.exit(r.status ?? 1)
