#!/usr/bin/env node
// The README's commands, runnable on a machine with only Node ≥ 20 and npm:
//   npm run demo        installs what it needs, builds, and runs examples/demo
//   npm test            installs, builds, typechecks, runs the everyday test projects, checks the packages
//   npm run build       builds the packages (used by bench, test:fastify-suite, packed-apps…)
//   npm run typecheck   typechecks the packages and the tests
//   npm run release     builds, checks the packages, `changeset publish` (after `npx changeset version`)
// pnpm is reached through scripts/lib/pnpm.mjs (`npx pnpm@10` when there is no global pnpm 10):
// nothing here may call a bare `pnpm`.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pnpmCommand } from './lib/pnpm.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const task = process.argv[2]
const extra = process.argv.slice(3)

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${[cmd, ...args].join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32', ...opts })
  if (r.status !== 0) {
    console.error(`\n✗ ${[cmd, ...args].join(' ')} failed (${r.status ?? r.signal})`)
    process.exit(r.status ?? 1)
  }
}

const DEFAULT_PROJECTS = ['core', 'express', 'koa', 'fastify', 'conformance', 'process', 'types']
const p = (...args) => {
  const [pm, ...pmArgs] = pnpmCommand()
  run(pm, [...pmArgs, ...args])
}
const bin = (name) => path.join(root, 'node_modules', '.bin', name)

function install() {
  const lock = fs.existsSync(path.join(root, 'pnpm-lock.yaml'))
  p('install', ...(process.env.CI && lock ? ['--frozen-lockfile'] : []))
}

function build() {
  p('-r', '--filter', './packages/*', 'build')
}

function typecheck() {
  p('-r', '--filter', './packages/*', 'typecheck')
  run(bin('tsc'), ['-p', 'tsconfig.test.json', '--noEmit'])
}

switch (task) {
  case 'demo':
    install()
    build()
    run(process.execPath, ['examples/demo/demo.mjs', ...extra])
    break
  case 'test':
    install()
    build()
    typecheck()
    // the everyday projects; integration (cluster, PM2) and proxies (HAProxy, nginx) have their own scripts
    run(process.execPath, ['scripts/vitest.mjs', ...(extra.length ? extra : DEFAULT_PROJECTS.flatMap((name) => ['--project', name]))])
    run(process.execPath, ['scripts/check-packages.mjs'])
    break
  case 'install':
    install()
    break
  case 'build':
    build()
    break
  case 'typecheck':
    typecheck()
    break
  case 'release':
    // changesets publishes with pnpm when it sees a pnpm workspace: run it inside `pnpm exec`,
    // which puts the pnpm in use (npx's when there is no global one) first on PATH
    install()
    build()
    run(process.execPath, ['scripts/check-packages.mjs'])
    p('exec', 'changeset', 'publish', ...extra)
    break
  default:
    console.error('usage: node scripts/run.mjs demo|test|install|build|typecheck|release')
    process.exit(2)
}
