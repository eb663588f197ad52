#!/usr/bin/env node
// Unused code and dependencies: knip over the monorepo (knip.json: entry points are the
// packages' exports, the test files, scripts, examples and bench), plus one check knip cannot
// make: every ERR_QUIESCE_* code the core declares is used somewhere besides its declaration.
//
// Findings listed in scripts/unused-known.json (found when the check was introduced, in files
// this check's author could not change) are reported but do not fail; anything else fails.
//   node scripts/check-unused.mjs            fails on new findings only
//   node scripts/check-unused.mjs --strict   fails on every finding (the known ones too)
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const strict = process.argv.includes('--strict')
const known = JSON.parse(fs.readFileSync(path.join(root, 'scripts', 'unused-known.json'), 'utf8'))

const r = spawnSync(path.join(root, 'node_modules', '.bin', 'knip'), ['--reporter', 'json', '--no-progress'], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 64 << 20,
})
let report
try {
  report = JSON.parse(r.stdout)
} catch {
  process.stderr.write(r.stdout + r.stderr)
  console.error('✗ knip did not produce a report')
  process.exit(1)
}

// one line per finding: "<kind> <file>[:line] <name>"
const findings = []
for (const issue of report.issues ?? []) {
  for (const [kind, list] of Object.entries(issue)) {
    if (!Array.isArray(list)) continue
    for (const item of list) {
      if (kind === 'files') findings.push(`file ${issue.file}`)
      else if (Array.isArray(item)) findings.push(`${kind} ${issue.file} ${item.map((i) => i.name).join('|')}`)
      else findings.push(`${kind} ${issue.file}:${item.line ?? '?'} ${item.name}`)
    }
  }
}

// error codes: declared in the QuiesceErrorCode union, used nowhere else in packages/*/src
const errorsFile = path.join(root, 'packages', 'core', 'src', 'errors.ts')
const union = /export type QuiesceErrorCode =([\s\S]*?)\n\n/.exec(fs.readFileSync(errorsFile, 'utf8'))?.[1] ?? ''
const codes = [...union.matchAll(/'(ERR_QUIESCE_\w+)'/g)].map((m) => m[1])
const sources = []
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name)
    if (e.isDirectory()) walk(f)
    else if (f.endsWith('.ts')) sources.push(fs.readFileSync(f, 'utf8'))
  }
}
for (const pkg of fs.readdirSync(path.join(root, 'packages'))) {
  const src = path.join(root, 'packages', pkg, 'src')
  if (fs.existsSync(src)) walk(src)
}
const all = sources.join('\n').replace(union, '')
for (const code of codes) if (!all.includes(`'${code}'`)) findings.push(`errorCode packages/core/src/errors.ts ${code}`)

// line numbers move: known findings match without them
const stripLine = (f) => f.replace(/:(\d+|\?) /, ' ')
const knownKeys = new Map(Object.entries(known.findings).map(([k, why]) => [stripLine(k), why]))
const fresh = findings.filter((f) => !knownKeys.has(stripLine(f)))
const stillKnown = findings.filter((f) => knownKeys.has(stripLine(f)))
const gone = [...knownKeys.keys()].filter((k) => !findings.some((f) => stripLine(f) === k))

if (stillKnown.length) {
  console.log(`${strict ? '✗' : '!'} ${stillKnown.length} known finding(s) (scripts/unused-known.json; ${strict ? 'failing: --strict' : 'not failing'}):`)
  for (const f of stillKnown) console.log(`  ${f}  — ${knownKeys.get(stripLine(f))}`)
}
if (gone.length) {
  console.log(`\n✓ fixed since: remove from scripts/unused-known.json:`)
  for (const g of gone) console.log(`  ${g}`)
}
if (fresh.length) {
  console.error(
    `\n✗ ${fresh.length} new finding(s): unused exports, files or dependencies (fix them, or list them with a reason in scripts/unused-known.json):`,
  )
  for (const f of fresh) console.error(`  ${f}`)
}
if (fresh.length || (strict && stillKnown.length)) process.exit(1)
console.log(`\n✓ no new unused code or dependency (knip, error codes)`)
