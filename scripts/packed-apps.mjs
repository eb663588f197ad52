#!/usr/bin/env node
// Installs the packages as a user would and runs the README's examples from them.
//
// Each package is packed as a publish would (`pnpm pack` through npx: `workspace:` ranges become
// real versions), then four scratch projects are made in a temp folder OUTSIDE the workspace
// and installed with a plain `npm install` of the tarballs and the frameworks from the registry:
//   esm          "type": "module", .js
//   cjs          "type": "commonjs", require()
//   ts-node16    TypeScript strict, module/moduleResolution node16, compiled with tsc
//   ts-bundler   TypeScript strict, module preserve + moduleResolution bundler, compiled with tsc
// Nothing from the workspace may leak in: no symlink anywhere in node_modules, no node_modules
// above the project, every @quiesce package resolved inside the project with no workspace: range.
// In each project the README's example for bare Node, Express, Koa and Fastify runs under a real
// SIGTERM while a keep-alive request is in flight: that request must get 200 with
// `Connection: close`, and the process must exit 0. The TypeScript projects also type-check
// requestSignal, ctx.signal (Koa), fastify.graceful and request.quiesceSignal (with
// @ts-expect-error lines that fail if a type is `any` or missing).
//
//   node scripts/packed-apps.mjs [--only=esm,cjs,ts-node16,ts-bundler] [--keep]
// The packages must be built (`npm run build`).
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { packAll, publishedPackages, root } from './lib/pack.mjs'

const argv = process.argv.slice(2)
const only = argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',')
const keep = argv.includes('--keep')
const rootManifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const range = (name) => rootManifest.devDependencies[name] ?? fail(`root package.json has no devDependency ${name}`)

function fail(message) {
  throw new Error(message)
}

// ---------------------------------------------------------------------------------------------
// the apps' sources: one per framework, written once in ESM syntax (valid JS and strict TS: every
// callback is contextually typed); CommonJS gets the require() form
const SERVERS = {
  node: `import http from 'node:http'
import { graceful, requestSignal } from '@quiesce/core'
import { listening, slowWork } from './support.js'

const server = http.createServer(async (req, res) => {
  if (req.url === '/ready') return g.readiness(req, res) // 200, then 503 once draining
  const body = await slowWork({ signal: requestSignal(req) }) // aborts if the client leaves
  res.end(body)
})
const g = graceful(server, { timeout: 10_000 })
g.onShutdown(() => console.log('HOOK db closed'), { name: 'db', timeout: 2000 })
server.listen(0, '127.0.0.1', () => listening(server))
// SIGINT / SIGTERM: in-flight requests finish, idle sockets close, hooks run, exit 0.
`,
  express: `import express from 'express'
import { graceful, requestSignal } from '@quiesce/express'
import { listening, slowWork } from './support.js'

const app = express()
const g = graceful({ timeout: 10_000 })
app.use(g) // first, before your routes
app.get('/ready', g.readiness)
app.get('/slow', async (req, res) => {
  res.send(await slowWork({ signal: requestSignal(req) }))
})
const server = app.listen(0, '127.0.0.1', () => listening(server))
g.attach(server)
`,
  koa: `import Koa from 'koa'
import { graceful } from '@quiesce/koa'
import { listening, slowWork } from './support.js'

const app = new Koa()
const g = graceful({ timeout: 10_000 })
app.use(g) // first
app.use(async (ctx) => {
  ctx.body = await slowWork({ signal: ctx.signal })
})
const server = app.listen(0, '127.0.0.1', () => listening(server))
g.attach(server)
`,
  fastify: `import Fastify from 'fastify'
import { gracefulPlugin, requestSignal } from '@quiesce/fastify'
import { listening, slowWork } from './support.js'

const fastify = Fastify({ logger: true })
await fastify.register(gracefulPlugin, { timeout: 10_000 })
fastify.get('/slow', async (request) => slowWork({ signal: requestSignal(request) }))
await fastify.listen({ port: 0, host: '127.0.0.1' })
listening(fastify.server)
// SIGTERM, fastify.close() and fastify.graceful.shutdown() all drain the same way.
`,
}

// what the harness reads on stdout: PORT <n> once listening, INFLIGHT when /slow's handler runs
const SUPPORT_JS = `export function listening(server) {
  const address = server.address()
  console.log(\`PORT \${typeof address === 'object' && address ? address.port : address}\`)
}

export function slowWork({ signal }) {
  console.log('INFLIGHT')
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve('done'), 400)
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason) }, { once: true })
  })
}
`
const SUPPORT_TS = `import type { AddressInfo } from 'node:net'

export function listening(server: { address(): AddressInfo | string | null }): void {
  const address = server.address()
  console.log(\`PORT \${typeof address === 'object' && address ? address.port : address}\`)
}

export function slowWork({ signal }: { signal: AbortSignal }): Promise<string> {
  console.log('INFLIGHT')
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve('done'), 400)
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason) }, { once: true })
  })
}
`
// compiled, never run: the public types a user leans on. Each @ts-expect-error fails the build
// when the line it guards compiles (a type that became \`any\`, a merge that vanished).
const TYPE_CHECKS = `import type { IncomingMessage } from 'node:http'
import { requestSignal as coreSignal, type ShutdownReport, type State } from '@quiesce/core'
import { requestSignal as expressSignal } from '@quiesce/express'
import { requestSignal as koaSignal } from '@quiesce/koa'
import { requestSignal as fastifySignal } from '@quiesce/fastify'
import type { Request } from 'express'
import type { Context } from 'koa'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export async function typeChecks(req: IncomingMessage, expressReq: Request, ctx: Context, fastify: FastifyInstance, request: FastifyRequest): Promise<void> {
  const fromCore: AbortSignal = coreSignal(req)
  // @ts-expect-error requestSignal returns an AbortSignal, not any
  const notNumber: number = coreSignal(req)
  const fromExpress: AbortSignal = expressSignal(expressReq)
  const koaCtx: AbortSignal = ctx.signal
  // @ts-expect-error ctx.signal (merged into Koa's DefaultContext) is an AbortSignal, not any
  const koaNotNumber: number = ctx.signal
  const fromKoa: AbortSignal = koaSignal(ctx)
  const onRequest: AbortSignal = request.quiesceSignal
  // @ts-expect-error request.quiesceSignal is read-only
  request.quiesceSignal = new AbortController().signal
  const fromFastify: AbortSignal = fastifySignal(request)
  const state: State = fastify.graceful.state
  // @ts-expect-error fastify.graceful is typed: no such member
  fastify.graceful.noSuchMember()
  const report: ShutdownReport = await fastify.graceful.shutdown()
  void [fromCore, notNumber, fromExpress, koaCtx, koaNotNumber, fromKoa, onRequest, fromFastify, state, report]
}
`

function toCommonJs(source) {
  const body = source
    .replace(/^import (\w+) from '([^']+)'$/gm, "const $1 = require('$2')")
    .replace(/^import \{ ([^}]+) \} from '([^']+)'$/gm, "const { $1 } = require('$2')")
  const [requires, rest] = [
    body.split('\n').filter((l) => l.startsWith('const ') && l.includes('require(')),
    body.split('\n').filter((l) => !(l.startsWith('const ') && l.includes('require('))),
  ]
  // top-level await is ESM-only: the body runs in an async function
  return `'use strict'\n${requires.join('\n')}\n\n;(async () => {\n${rest.join('\n')}\n})().catch((err) => { console.error(err); process.exit(1) })\n`
}

const APPS = {
  esm: { type: 'module', ext: 'js', files: () => ({ 'support.js': SUPPORT_JS, ...servers('js') }) },
  cjs: {
    type: 'commonjs',
    ext: 'js',
    files: () => ({
      'support.js': `'use strict'\n${SUPPORT_JS.replace(/^export function (\w+)/gm, 'module.exports.$1 = function $1')}`,
      ...Object.fromEntries(Object.entries(SERVERS).map(([k, v]) => [`${k}.js`, toCommonJs(v)])),
    }),
  },
  'ts-node16': { type: 'module', ext: 'ts', tsconfig: { module: 'node16', moduleResolution: 'node16' }, files: () => tsFiles() },
  'ts-bundler': { type: 'module', ext: 'ts', tsconfig: { module: 'preserve', moduleResolution: 'bundler' }, files: () => tsFiles() },
}
function servers(ext) {
  return Object.fromEntries(Object.entries(SERVERS).map(([k, v]) => [`${k}.${ext}`, v]))
}
function tsFiles() {
  return { 'support.ts': SUPPORT_TS, 'type-checks.ts': TYPE_CHECKS, ...servers('ts') }
}

// ---------------------------------------------------------------------------------------------
function sh(cmd, args, cwd) {
  // npm_* variables from an outer `npm run` (prefix, workspace config) must not reach the app's npm
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} (in ${cwd}) failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

function noLeaks(appDir, tarballs) {
  for (let dir = path.dirname(appDir); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'node_modules'))) fail(`${dir}/node_modules exists above the scratch project: it could leak in`)
    if (path.dirname(dir) === dir) break
  }
  if (!path.relative(root, appDir).startsWith('..')) fail(`${appDir} is inside the workspace`)
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name)
      if (e.isSymbolicLink() && path.basename(dir) !== '.bin') fail(`symlink in node_modules: ${f} → ${fs.readlinkSync(f)}`)
      if (e.isDirectory()) walk(f)
    }
  }
  walk(path.join(appDir, 'node_modules'))
  for (const [name] of tarballs) {
    const manifestPath = path.join(appDir, 'node_modules', name, 'package.json')
    if (!fs.existsSync(manifestPath)) fail(`${name} is not installed at the top of ${appDir}/node_modules`)
    const text = fs.readFileSync(manifestPath, 'utf8')
    if (text.includes('workspace:')) fail(`${name}'s installed package.json has a workspace: range`)
    if (fs.existsSync(path.join(appDir, 'node_modules', name, 'src'))) fail(`${name} was installed with its src/ (not from the tarball?)`)
  }
  // the adapters' own copy of @quiesce/core, if npm nested one, must be the tarball's too
  const nested = sh('npm', ['ls', '@quiesce/core', '--all', '--parseable'], appDir).trim().split('\n').filter(Boolean)
  for (const p of nested) if (path.relative(appDir, p).startsWith('..')) fail(`@quiesce/core resolved outside the project: ${p}`)
}

function request(port) {
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true })
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent, headers: { connection: 'keep-alive' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => {
        body += d
      })
      res.on('end', () => {
        agent.destroy()
        resolve({ status: res.statusCode, connection: res.headers.connection, body })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

// runs one server, sends /slow, SIGTERMs it while /slow is in flight; resolves with what happened
function exercise(appDir, entry) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry], { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let response
    let sentTerm = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after 30 s\nstdout:\n${out}\nstderr:\n${err}`))
    }, 30_000)
    child.stderr.on('data', (d) => {
      err += d
    })
    child.stdout.on('data', (d) => {
      const before = out
      out += d
      for (const line of out.slice(before.lastIndexOf('\n') + 1).split('\n')) {
        const port = /^PORT (\d+)$/.exec(line)
        if (port && !response) response = request(Number(port[1])).catch((e) => ({ error: e }))
        if (line === 'INFLIGHT' && !sentTerm) {
          sentTerm = true
          child.kill('SIGTERM')
        }
      }
    })
    child.on('exit', async (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, sentTerm, response: await (response ?? Promise.resolve(undefined)), out, err })
    })
  })
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-packed-apps-'))
  let failures = 0
  try {
    for (const pkg of publishedPackages()) if (!fs.existsSync(path.join(pkg.dir, 'dist'))) fail(`${pkg.name} is not built: run \`npm run build\` first`)
    console.log(`packing into ${work}/tarballs (pnpm pack: workspace: ranges rewritten)`)
    const tarballs = packAll(path.join(work, 'tarballs'))
    for (const [kind, app] of Object.entries(APPS)) {
      if (only && !only.includes(kind)) continue
      try {
        failures += await runApp(work, kind, app, tarballs)
      } catch (err) {
        failures++
        console.error(`✗ [${kind}] ${err.message}`)
      }
    }
  } catch (err) {
    failures++
    console.error(`✗ ${err.message}`)
  } finally {
    if (keep) console.log(`\nkept ${work}`)
    else fs.rmSync(work, { recursive: true, force: true })
  }
  if (failures) {
    console.error(`\n✗ packed apps: ${failures} failure(s)`)
    process.exit(1)
  }
  console.log(`\n✓ packed apps: ${only ? only.join(', ') : 'ESM, CommonJS, TS node16 and TS bundler'}, each with bare Node, Express, Koa and Fastify`)
}

/** Makes, installs, checks and runs one scratch project; returns the number of failures. */
async function runApp(work, kind, app, tarballs) {
  let failures = 0
  const dir = path.join(work, kind)
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true })
  const ts = app.ext === 'ts'
  const manifest = {
    name: `quiesce-packed-${kind}`,
    private: true,
    type: app.type,
    dependencies: {
      ...Object.fromEntries([...tarballs].map(([name, tgz]) => [name, `file:${tgz}`])),
      express: range('express'),
      koa: range('koa'),
      fastify: range('fastify'),
    },
    devDependencies: ts
      ? { typescript: range('typescript'), '@types/node': range('@types/node'), '@types/express': range('@types/express'), '@types/koa': range('@types/koa') }
      : {},
  }
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  for (const [file, text] of Object.entries(app.files())) fs.writeFileSync(path.join(dir, 'src', file), text)
  if (ts) {
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        esModuleInterop: true,
        // true: with false, tsc reports errors inside third-party declarations (@types/koa
        // against content-disposition's) that say nothing about ours; what the user's code
        // sees of our types is still checked
        skipLibCheck: true,
        rootDir: 'src',
        outDir: 'dist',
        ...app.tsconfig,
      },
      include: ['src'],
    }
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`)
  }
  console.log(`\n[${kind}] npm install (tarballs + registry) in ${dir}`)
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--no-package-lock'], dir)
  noLeaks(dir, tarballs)
  console.log(`[${kind}] no symlinks, no node_modules above, @quiesce/* from the tarballs`)
  if (ts) {
    sh(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir)
    console.log(`[${kind}] tsc (strict, ${app.tsconfig.moduleResolution}): types check`)
  }
  const outDir = ts ? 'dist' : 'src'
  for (const framework of Object.keys(SERVERS)) {
    const label = `[${kind}] ${framework}`
    try {
      const r = await exercise(dir, path.join(outDir, `${framework}.js`))
      const res = r.response
      const problems = []
      if (!r.sentTerm) problems.push('the request never reached the handler (no INFLIGHT)')
      if (!res || res.error) problems.push(`the in-flight request failed: ${res?.error?.message ?? 'no response'}`)
      else {
        if (res.status !== 200) problems.push(`status ${res.status}, expected 200`)
        if (res.connection !== 'close') problems.push(`Connection: ${res.connection}, expected close`)
        if (res.body !== 'done') problems.push(`body ${JSON.stringify(res.body)}, expected "done"`)
      }
      if (r.code !== 0) problems.push(`exit ${r.code ?? r.signal}, expected 0`)
      if (problems.length) {
        failures++
        console.error(`✗ ${label}: ${problems.join('; ')}\n--- stdout\n${r.out}--- stderr\n${r.err}`)
      } else console.log(`✓ ${label}: SIGTERM with /slow in flight → 200, Connection: close, exit 0`)
    } catch (err) {
      failures++
      console.error(`✗ ${label}: ${err.message}`)
    }
  }
  return failures
}

await main()
