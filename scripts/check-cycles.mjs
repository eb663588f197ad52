#!/usr/bin/env node
// Import cycles in the published sources (packages/*/src), with Biome's noImportCycles and
// type-only imports counted (ignoreTypes: false in biome.json): a type-only back edge is not a
// runtime cycle, but it still ties two modules together and is the first step to a real one.
//   node scripts/check-cycles.mjs          reports the cycles, exits 0 (CI today: one known cycle)
//   node scripts/check-cycles.mjs --fail   exits 1 when there is any cycle (switch CI to this)
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const strict = process.argv.includes('--fail')
const dirs = fs
  .readdirSync(path.join(root, 'packages'))
  .map((d) => path.join('packages', d, 'src'))
  .filter((d) => fs.existsSync(path.join(root, d)))
const r = spawnSync(
  path.join(root, 'node_modules', '.bin', 'biome'),
  ['lint', '--only=suspicious/noImportCycles', '--reporter=github', '--max-diagnostics=none', ...dirs],
  { cwd: root, encoding: 'utf8' },
)
if (r.status !== 0 && !/noImportCycles/.test(r.stdout)) {
  process.stderr.write(r.stdout + r.stderr)
  console.error('✗ biome failed')
  process.exit(r.status ?? 1)
}
// GitHub reporter lines: ::warning title=lint/suspicious/noImportCycles,file=…,line=…::message
const found = r.stdout
  .split('\n')
  .filter((l) => l.includes('noImportCycles'))
  .map((l) => {
    const m = /file=([^,]+),line=(\d+)/.exec(l)
    return m ? `${path.relative(root, path.resolve(root, m[1]))}:${m[2]}` : l
  })
if (!found.length) {
  console.log(`✓ no import cycle in ${dirs.join(', ')}`)
  process.exit(0)
}
console.log(`${strict ? '✗' : '!'} ${found.length} import(s) in a cycle (type-only imports count):`)
for (const f of found) console.log(`  ${f}`)
if (strict) process.exit(1)
console.log('(reported, not failing: run with --fail to make a cycle fail CI)')
