#!/usr/bin/env node
// Fastify's own test suite with @quiesce/fastify registered on every instance (issue 11), through
// the runner in scripts/fastify-suite/ (Fastify's test files come from the installed fastify
// package). Extra arguments go to the runner (--dual-stack, --plugin=noop, --files=…; see its
// header). The packages must be built first (`npm run build`; `npm run test:fastify-suite` does both).
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fastify-suite', 'run.mjs')
const r = spawnSync(process.execPath, [runner, ...process.argv.slice(2)], { stdio: 'inherit' })
process.exit(r.status ?? 1)
