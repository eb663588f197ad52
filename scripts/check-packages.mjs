#!/usr/bin/env node
// Checks that every published package resolves in ESM and CommonJS with its types:
// @arethetypeswrong/cli (attw --pack, node16 profile: engines are >= 20, so the pre-`exports`
// node10 resolution does not apply) and publint --strict, on the built packages.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)
let failed = false
for (const dir of fs.readdirSync(path.join(root, 'packages'))) {
  const pkgDir = path.join(root, 'packages', dir)
  const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  if (manifest.private) continue
  for (const [cmd, args] of [
    [bin('attw'), ['--pack', '.', '--format', 'table-flipped', '--profile', 'node16']],
    [bin('publint'), ['--strict']],
  ]) {
    console.log(`\n$ (${manifest.name}) ${path.basename(cmd)} ${args.join(' ')}`)
    const r = spawnSync(cmd, args, { cwd: pkgDir, stdio: 'inherit' })
    if (r.status !== 0) failed = true
  }
}
if (failed) {
  console.error('\n✗ a package does not resolve cleanly (see above)')
  process.exit(1)
}
console.log('\n✓ every package resolves in ESM and CommonJS, with types')
