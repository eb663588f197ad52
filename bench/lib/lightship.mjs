// lightship 7.3.0 as published on npm ships its TypeScript sources but no `dist/` (its package.json
// points `exports` at ./dist/index.js, which is missing), so `import 'lightship'` fails. To run it
// as a library anyway, this compiles the package's own published sources, unchanged, with esbuild
// (already in the workspace through tsup) into bench/.cache/, resolving lightship's dependencies
// (fastify 4, roarr, delay, serialize-error) from lightship's own install.
import { mkdirSync, realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

/** Resolves to a `file:` URL of an importable lightship module, or throws with the reason. */
export async function lightshipModule() {
  // its `exports` hides package.json: find the install through the bench package's node_modules
  const pkgDir = realpathSync(path.join(here, '..', 'node_modules', 'lightship'))
  try {
    const url = pathToFileURL(path.join(pkgDir, 'dist/index.js')).href
    await import(url)
    return url // a build that ships dist/ works as is
  } catch {}
  const esbuild = createRequire(require.resolve('tsup'))('esbuild')
  const fromPkg = createRequire(path.join(pkgDir, 'package.json'))
  const outfile = path.join(here, '..', '.cache', 'lightship.mjs')
  mkdirSync(path.dirname(outfile), { recursive: true })
  await esbuild.build({
    entryPoints: [path.join(pkgDir, 'src/index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
    plugins: [
      {
        name: 'lightship-deps',
        setup(build) {
          // bare imports stay imports, pinned to the copies lightship itself depends on
          build.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('node:')) return { path: args.path, external: true }
            return { path: pathToFileURL(fromPkg.resolve(args.path)).href, external: true }
          })
        },
      },
    ],
  })
  return pathToFileURL(outfile).href
}
