#!/usr/bin/env node
// The API reference: TypeDoc from the public TSDoc of every package's entry points into docs/api/
// (generated, not committed). Fails on any TypeDoc warning (treatWarningsAsErrors; validation of
// {@link} targets and of referenced-but-not-exported types, see typedoc.json), then checks that
// every relative link in the generated HTML points at a file that exists.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'docs', 'api')
fs.rmSync(out, { recursive: true, force: true })
const r = spawnSync(path.join(root, 'node_modules', '.bin', 'typedoc'), [], { cwd: root, stdio: 'inherit' })
if (r.status !== 0) {
  console.error('✗ typedoc failed (warnings are errors)')
  process.exit(r.status ?? 1)
}
let pages = 0
const broken = []
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name)
    if (e.isDirectory()) walk(f)
    else if (f.endsWith('.html')) {
      pages++
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/\shref="([^"#?]+)(?:[#?][^"]*)?"/g)) {
        const href = m[1]
        if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) continue // external
        if (!fs.existsSync(path.resolve(path.dirname(f), decodeURI(href)))) broken.push(`${path.relative(root, f)} → ${href}`)
      }
    }
  }
}
walk(out)
if (broken.length) {
  console.error(`✗ ${broken.length} broken link(s) in docs/api:`)
  for (const b of broken.slice(0, 50)) console.error(`  ${b}`)
  process.exit(1)
}
console.log(`✓ docs/api: ${pages} pages, no broken relative link`)
