// Packs every published package as `pnpm publish` would: `pnpm pack` rewrites the `workspace:`
// ranges to real versions (a plain `npm pack` would leave `workspace:^` in the tarball, which no
// registry client can install). The packages must be built first.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pnpm } from './pnpm.mjs'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The packages under packages/ that publish (not private): [{ name, version, dir, manifest }]. */
export function publishedPackages() {
  return fs
    .readdirSync(path.join(root, 'packages'))
    .map((d) => path.join(root, 'packages', d))
    .filter((dir) => fs.existsSync(path.join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) }))
    .filter(({ manifest }) => !manifest.private)
    .map(({ dir, manifest }) => ({ name: manifest.name, version: manifest.version, dir, manifest }))
}

/** Packs each published package into `dest`; returns Map(name → absolute .tgz path). Throws on failure. */
export function packAll(dest) {
  fs.mkdirSync(dest, { recursive: true })
  const out = new Map()
  for (const pkg of publishedPackages()) {
    if (!fs.existsSync(path.join(pkg.dir, 'dist'))) throw new Error(`${pkg.name} is not built (no dist/): run \`npm run build\` first`)
    const before = new Set(fs.readdirSync(dest))
    const r = pnpm(['pack', '--pack-destination', dest], { cwd: pkg.dir, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`pnpm pack failed in ${pkg.dir} (${r.status ?? r.signal})`)
    const made = fs.readdirSync(dest).filter((f) => f.endsWith('.tgz') && !before.has(f))
    if (made.length !== 1) throw new Error(`pnpm pack in ${pkg.dir} made ${made.length} tarballs`)
    out.set(pkg.name, path.join(dest, made[0]))
  }
  return out
}
