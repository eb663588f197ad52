#!/usr/bin/env node
// Checks that every published package resolves in ESM and CommonJS with its types, on the exact
// tarball a publish would upload: each package is packed once with `pnpm pack` (through npx when
// there is no global pnpm; it rewrites `workspace:` ranges as `pnpm publish` does), then
//   publint run <tarball> --strict           (publint never spawns a package manager itself)
//   attw <tarball> --profile node16          (engines are >= 20: the pre-`exports` node10 resolution does not apply)
// Why not `publint --pack npm`: npm pack leaves `workspace:^` in dependencies, so publint would
// lint a manifest nobody publishes; and `attw --pack` packs again with npm. One tarball, both tools.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { packAll, publishedPackages, root } from './lib/pack.mjs'

const bin = (name) => path.join(root, 'node_modules', '.bin', name)
const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-pack-'))
let failed = false
try {
  const tarballs = packAll(dest)
  for (const pkg of publishedPackages()) {
    const tgz = tarballs.get(pkg.name)
    // the tarball must carry no workspace: range (what a user's npm install would choke on)
    const listed = spawnSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' })
    if (listed.status !== 0 || /"workspace:/.test(listed.stdout)) {
      console.error(`✗ ${pkg.name}: the packed package.json still has a workspace: range (or could not be read)`)
      failed = true
    }
    // what the registry page and a user expect, in the tarball itself
    const files = spawnSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).stdout.split('\n')
    for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md']) {
      if (!files.includes(`package/${f}`)) {
        console.error(`✗ ${pkg.name}: the tarball has no ${f}`)
        failed = true
      }
    }
    const m = JSON.parse(listed.stdout || '{}')
    const missing = [
      ['repository.directory', m.repository?.directory],
      ['homepage', m.homepage],
      ['bugs', m.bugs],
      ['license', m.license],
      ['publishConfig.access = public', m.publishConfig?.access === 'public'],
    ].filter(([, v]) => !v)
    for (const [field] of missing) {
      console.error(`✗ ${pkg.name}: package.json lacks ${field}`)
      failed = true
    }
    for (const [cmd, args] of [
      [bin('attw'), [tgz, '--format', 'table-flipped', '--profile', 'node16']],
      [bin('publint'), ['run', tgz, '--strict']],
    ]) {
      console.log(`\n$ (${pkg.name}) ${path.basename(cmd)} ${args.map((a) => (a === tgz ? path.basename(tgz) : a)).join(' ')}`)
      const r = spawnSync(cmd, args, { cwd: pkg.dir, stdio: 'inherit' })
      if (r.status !== 0) failed = true
    }
  }
} catch (err) {
  console.error(`✗ ${err.message}`)
  failed = true
} finally {
  fs.rmSync(dest, { recursive: true, force: true })
}
if (failed) {
  console.error('\n✗ a package does not resolve cleanly (see above)')
  process.exit(1)
}
console.log('\n✓ every package resolves in ESM and CommonJS, with types (checked on the pnpm-packed tarballs)')
