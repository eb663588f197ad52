#!/usr/bin/env node
// After `npm run test:coverage`: the core's totals and, for each file of packages/core/src/internal,
// the branches no test took (line: kind, which arms), from coverage/core/coverage-final.json.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dir = path.join(root, 'coverage', 'core')
const summary = JSON.parse(fs.readFileSync(path.join(dir, 'coverage-summary.json'), 'utf8'))
const final = JSON.parse(fs.readFileSync(path.join(dir, 'coverage-final.json'), 'utf8'))
const t = summary.total
console.log(`@quiesce/core (core project): statements ${t.statements.pct}%, branches ${t.branches.pct}%, functions ${t.functions.pct}%, lines ${t.lines.pct}%`)
for (const [file, data] of Object.entries(final).sort()) {
  const rel = path.relative(root, file)
  if (!rel.startsWith(path.join('packages', 'core', 'src', 'internal'))) continue
  const s = summary[file]
  const missed = []
  for (const [id, counts] of Object.entries(data.b)) {
    const zero = counts.map((c, i) => (c === 0 ? i : -1)).filter((i) => i >= 0)
    if (!zero.length) continue
    const b = data.branchMap[id]
    const line = b.loc?.start?.line ?? b.locations?.[0]?.start?.line
    missed.push(`${line} ${b.type}${counts.length > 1 ? ` arm ${zero.join(',')}/${counts.length}` : ''}`)
  }
  console.log(`\n${rel}: branches ${s?.branches.pct}% (${missed.length} not taken)`)
  if (missed.length) console.log(`  ${missed.join('; ')}`)
}
