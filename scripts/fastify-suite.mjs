#!/usr/bin/env node
// Fastify's own test suite with @quiesce/fastify registered on every instance (issue 11), through
// the shared tool (../shared/tools/fastify-suite). Extra arguments go to the tool (--dual-stack…).
// The packages must be built first (`pnpm build`).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const candidates = [
  process.env.FASTIFY_SUITE,
  path.resolve(root, '..', 'shared', 'tools', 'fastify-suite', 'run.mjs'),
  '/work/shared/tools/fastify-suite/run.mjs',
].filter(Boolean)
const tool = candidates.find((p) => fs.existsSync(p))
if (!tool) {
  console.error(`✗ the fastify-suite tool was not found (looked in: ${candidates.join(', ')}); set FASTIFY_SUITE to its run.mjs`)
  process.exit(1)
}
const r = spawnSync(process.execPath, [tool, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, QUIESCE_ROOT: root },
})
process.exit(r.status ?? 1)
