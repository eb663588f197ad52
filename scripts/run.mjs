#!/usr/bin/env node
// The README's commands, runnable on a machine with only Node ≥ 20 and npm:
//   npm run demo   installs what it needs, builds, and runs examples/demo
//   npm test       installs what it needs, typechecks, builds, runs every test project, checks the packages
//   npm run bench  (and bench:peers, bench:testing) builds the packages, then runs the benchmark
// pnpm is used through `npx pnpm@10` when it is not installed.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

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

function pnpm() {
  const probe = spawnSync('pnpm', ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' })
  return probe.status === 0 ? ['pnpm'] : ['npx', '--yes', 'pnpm@10']
}

const DEFAULT_PROJECTS = ['core', 'express', 'koa', 'fastify', 'conformance', 'process']
const [pm, ...pmArgs] = pnpm()
const p = (...args) => run(pm, [...pmArgs, ...args])

function install() {
  const lock = fs.existsSync(path.join(root, 'pnpm-lock.yaml'))
  p('install', ...(process.env.CI && lock ? ['--frozen-lockfile'] : []))
}

function build() {
  p('-r', '--filter', './packages/*', 'build')
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
    p('run', 'typecheck')
    // the everyday projects; integration (cluster, PM2) and proxies (HAProxy, nginx) have their own scripts
    run(process.execPath, ['scripts/vitest.mjs', ...(extra.length ? extra : DEFAULT_PROJECTS.flatMap((name) => ['--project', name]))])
    run(process.execPath, ['scripts/check-packages.mjs'])
    break
  case 'build':
    build()
    break
  case 'bench':
  case 'bench:peers':
  case 'bench:testing':
    // builds the packages, then runs the benchmark (arguments after the task go to it)
    build()
    run(process.execPath, [{ bench: 'bench/overhead.mjs', 'bench:peers': 'bench/peers/run.mjs', 'bench:testing': 'bench/testing.mjs' }[task], ...extra])
    break
  default:
    console.error('usage: node scripts/run.mjs demo|test|build|bench|bench:peers|bench:testing')
    process.exit(2)
}
