// How the scripts reach pnpm on a machine that may have only Node and npm: a global pnpm 10 when
// there is one, otherwise `npx --yes pnpm@10` (fetched from the npm registry on first use). No
// script in this repository calls a bare `pnpm`; CI proves it with a failing `pnpm` first on PATH.
import { spawnSync } from 'node:child_process'

const win = process.platform === 'win32'
let cached

/** The command (and its leading arguments) that runs pnpm 10. */
export function pnpmCommand() {
  if (cached) return cached
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], shell: win })
  cached = probe.status === 0 && /^10\./.test(probe.stdout.trim()) ? ['pnpm'] : ['npx', '--yes', 'pnpm@10']
  return cached
}

/** Runs pnpm with `args` (inherits stdio); returns spawnSync's result. */
export function pnpm(args, opts = {}) {
  const [cmd, ...pre] = pnpmCommand()
  return spawnSync(cmd, [...pre, ...args], { stdio: 'inherit', shell: win, ...opts })
}
