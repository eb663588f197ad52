#!/usr/bin/env node
// Fastify's own test suite as a judge of @quiesce/fastify.
//
// The test files come from the fastify package installed in this workspace (this folder's
// package.json pins it, with the dev dependencies those tests load). They are copied into a
// scratch folder outside the repository — so that nothing from the workspace's node_modules can
// be picked up by walking up — next to a node_modules that links fastify's own dependencies and
// the tests' dev dependencies. Each chosen file runs under `node --test` (what Fastify's runner,
// borp, wraps) in columns: `plain`, and one per plugin with the plugin registered on every
// instance the tests create (register-plugin.cjs). A test counts when it passes plain:
// "N passed, M failed" counts its outcome with the plugin. Tests listed in
// expected-collisions.json (a correct plugin legitimately changes them: b = the contract over
// Fastify's keep-alive-then-503 close, c = Fastify internals such as hook counts) are reported as
// allowed and not counted, unless --strict.
//
//   node scripts/fastify-suite/run.mjs                  plain vs packages/fastify (built)
//   node scripts/fastify-suite/run.mjs --plugin=noop    plain vs a no-op plugin: must change nothing
//   options: --plugin=LIST (quiesce | noop | a path), --mode=both|plain|with-plugin,
//            --files=a.test.js,b.test.js, --all, --rows=changed|all, --jobs=N, --dual-stack,
//            --strict, --workdir=DIR
//   env: QUIESCE_PLUGIN_OPTS (JSON options for register(), default {"timeout":10000})
// --all runs every shipped test file except those that bind 0.0.0.0/'::' or need eslint, git or
// typescript; files that load a dev dependency not pinned here fail plain and are not counted.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const SUITE = JSON.parse(fs.readFileSync(path.join(HERE, 'package.json'), 'utf8'))

// The files that exercise close, keep-alive, forceCloseConnections, return503OnClosing,
// onRequestAbort, request/handler timeouts, server options, and the protocols the contract covers.
const DEFAULT_FILES = [
  'close.test.js',
  'close-pipelining.test.js',
  'close-disposable.test.js',
  'async-dispose.test.js',
  'server.test.js',
  'custom-http-server.test.js',
  'post-empty-body.test.js',
  'upgrade.test.js',
  'keep-alive-timeout.test.js',
  'max-requests-per-socket.test.js',
  'request-timeout.test.js',
  'client-timeout.test.js',
  'connection-timeout.test.js',
  'handler-timeout.test.js',
  'request-error.test.js',
  'header-overflow.test.js',
  'listen.5.test.js',
  'hooks.on-listen.test.js',
  'hooks.test.js',
  'hooks-async.test.js',
  'inject.test.js',
  'https/https.test.js',
  'https/custom-https-server.test.js',
  'http2/closing.test.js',
  'http2/plain.test.js',
  'http2/secure.test.js',
  'http2/secure-with-fallback.test.js',
]
const EXCLUDED_FROM_ALL = /^(listen\.1\.test\.js|internals\/server\.test\.js|build\/|types\/|bundler\/)/
const FILE_LIMIT_MS = 180_000 // a file still running after this is killed and counted as failed
const OPTIONS = ['plugin', 'mode', 'files', 'all', 'rows', 'jobs', 'dual-stack', 'strict', 'workdir']

const args = {}
for (const a of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(a)
  if (!m || !OPTIONS.includes(m[1])) {
    console.error(`unknown argument ${a} (options: ${OPTIONS.map((o) => `--${o}`).join(' ')})`)
    process.exit(2)
  }
  args[m[1]] = m[2] ?? true
}
const mode = args.mode ?? 'both'
const jobs = Math.max(1, Number(args.jobs ?? 2))
const pluginOpts = JSON.parse(process.env.QUIESCE_PLUGIN_OPTS || '{"timeout":10000}')

/** The folder of package `name` as Node would find it from `fromDir` (walks up node_modules; ignores "exports"). */
function packageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate)
    if (path.dirname(dir) === dir) return undefined
  }
}

function plugins() {
  return String(args.plugin ?? 'quiesce')
    .split(',')
    .filter(Boolean)
    .map((name) => {
      if (name === 'noop') return { name, path: path.join(HERE, 'noop-plugin.cjs'), opts: pluginOpts }
      if (name === 'quiesce') {
        const dir = path.join(ROOT, 'packages', 'fastify')
        if (!fs.existsSync(path.join(dir, 'dist'))) {
          console.error('@quiesce/fastify is not built: run `npm run build` first (or pass --plugin=noop)')
          process.exit(2)
        }
        return { name, path: dir, opts: pluginOpts }
      }
      if (fs.existsSync(name)) return { name: path.basename(name), path: path.resolve(name), opts: pluginOpts }
      console.error(`unknown plugin ${name} (quiesce, noop, or a path)`)
      return process.exit(2)
    })
}

// The scratch copy: <workdir>/fastify-<version>/ = the installed package's files (its tests
// require('..')), with node_modules/<dep> → the installed dependency, for fastify's runtime
// dependencies and the tests' dev dependencies pinned in this folder's package.json.
function prepare(workdir) {
  const installed = packageDir('fastify', HERE)
  if (!installed) {
    console.error('fastify is not installed: run `npm run build` (it installs the workspace) first')
    process.exit(2)
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'))
  if (manifest.version !== SUITE.devDependencies.fastify) {
    console.error(`installed fastify is ${manifest.version}, scripts/fastify-suite pins ${SUITE.devDependencies.fastify}: reinstall`)
    process.exit(2)
  }
  if (!fs.existsSync(path.join(installed, 'test'))) {
    console.error(`${installed} has no test/ folder: this fastify package does not ship its tests`)
    process.exit(2)
  }
  const dir = path.join(workdir, `fastify-${manifest.version}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.cpSync(installed, dir, { recursive: true, filter: (src) => path.relative(installed, src).split(path.sep)[0] !== 'node_modules' })
  const links = path.join(dir, 'node_modules')
  fs.mkdirSync(links, { recursive: true })
  const link = (name, from) => {
    const target = packageDir(name, from)
    if (!target) throw new Error(`${name} is not installed (needed by Fastify's tests)`)
    fs.mkdirSync(path.dirname(path.join(links, name)), { recursive: true })
    fs.symlinkSync(target, path.join(links, name), 'dir')
  }
  for (const name of Object.keys(manifest.dependencies ?? {})) link(name, installed)
  for (const name of Object.keys(SUITE.devDependencies)) if (name !== 'fastify') link(name, HERE)
  return { dir, version: manifest.version }
}

function listAll(fastifyDir) {
  const testDir = path.join(fastifyDir, 'test')
  return fs
    .readdirSync(testDir, { recursive: true })
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => /\.test\.(js|mjs)$/.test(f) && !EXCLUDED_FROM_ALL.test(f))
    .sort()
}

// One `node --test` process per file, in its own process group (killed whole on timeout).
function runFile(fastifyDir, file, column) {
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('FSUITE_')) delete env[k]
  const preloads = [path.join(HERE, 'listener-probe.cjs')]
  if (args['dual-stack']) preloads.push(path.join(HERE, 'dual-stack.cjs'))
  if (column.plugin) {
    preloads.push(path.join(HERE, 'register-plugin.cjs'))
    env.FSUITE_FASTIFY_MAIN = path.join(fastifyDir, 'fastify.js')
    env.FSUITE_PLUGIN = column.plugin.path
    env.FSUITE_PLUGIN_OPTS = JSON.stringify(column.plugin.opts)
    env.NODE_PATH = path.join(fastifyDir, 'node_modules') // lets the no-op plugin find fastify-plugin
  }
  env.NODE_OPTIONS = preloads.map((p) => `--require ${JSON.stringify(p)}`).join(' ')
  const argv = [
    '--test',
    '--test-timeout=30000',
    `--test-reporter=${path.join(HERE, 'reporter.mjs')}`,
    '--test-reporter-destination=stdout',
    path.join('test', file),
  ]
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: fastifyDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let killed = false
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    const timer = setTimeout(() => {
      killed = true
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }, FILE_LIMIT_MS)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const results = []
      const warnings = []
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue
        let r
        try {
          r = JSON.parse(line)
        } catch {
          continue
        }
        if (r.warning) warnings.push(`${r.warning}: ${r.text.replace(/\d+/g, 'N')}`)
        else results.push(r)
      }
      resolve({ file, results, warnings, code, signal, killed, stderr })
    })
  })
}

// Map("file > test > subtest" → result); suites count through their tests. A file that reported
// nothing (crashed, killed) becomes one failed row.
function byKey(run) {
  const map = new Map()
  for (const r of run.results) {
    if (r.suite || r.failure?.failureType === 'subtestsFailed') continue
    const base = `${run.file} > ${r.path.join(' > ')}`
    let key = base
    for (let n = 2; map.has(key); n++) key = `${base} #${n}`
    map.set(key, r)
  }
  if (run.killed || map.size === 0) {
    const why = run.killed
      ? `killed after ${FILE_LIMIT_MS / 1000} s`
      : `no test reported (exit ${run.code ?? run.signal}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`
    map.set(`${run.file} > (file)`, { status: 'fail', failure: { message: why } })
  }
  return map
}

// A column over `files`, `jobs` at a time. Process warnings a column's files print become rows
// '(process warnings) > TYPE: text' that fail in that column.
async function runColumn(fastifyDir, files, column) {
  const results = new Map()
  const warnedIn = new Map()
  const queue = [...files]
  const t0 = performance.now()
  const worker = async () => {
    while (queue.length) {
      const run = await runFile(fastifyDir, queue.shift(), column)
      for (const [k, v] of byKey(run)) results.set(k, { ...v, file: run.file })
      for (const w of new Set(run.warnings)) warnedIn.set(w, [...(warnedIn.get(w) ?? []), run.file])
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker))
  for (const [w, inFiles] of warnedIn) {
    results.set(`(process warnings) > ${w}`, {
      status: 'fail',
      failure: { message: `printed by ${inFiles.length} file(s): ${inFiles.slice(0, 4).join(', ')}` },
    })
  }
  console.log(`  ${column.name}: ${files.length} files in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return results
}

function oneLine(failure) {
  if (!failure) return 'no result'
  const where = failure.line ? ` (line ${failure.line})` : ''
  return `${failure.failureType ?? ''}${where}: ${String(failure.message).replace(/\s+/g, ' ').slice(0, 220)}`
}

async function main() {
  // a fresh scratch folder per run (runs may overlap on a shared machine); the copy is removed at
  // the end, results.json stays
  const workdir = args.workdir ? path.resolve(args.workdir) : fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-fastify-suite-'))
  if (!path.relative(ROOT, workdir).startsWith('..')) {
    console.error('--workdir must be outside the repository (its node_modules would leak into the tests)')
    process.exit(2)
  }
  fs.mkdirSync(workdir, { recursive: true })
  const { dir: fastifyDir, version } = prepare(workdir)
  process.on('exit', () => fs.rmSync(fastifyDir, { recursive: true, force: true }))
  const files = args.files ? String(args.files).split(',') : args.all ? listAll(fastifyDir) : DEFAULT_FILES
  const chosen = mode === 'plain' ? [] : plugins()
  const columns = [...(mode === 'with-plugin' ? [] : [{ name: 'plain', plugin: null }]), ...chosen.map((p) => ({ name: p.name, plugin: p }))]
  const allowed = JSON.parse(fs.readFileSync(path.join(HERE, 'expected-collisions.json'), 'utf8'))
  console.log(
    `fastify@${version} (installed), node ${process.version}, ${files.length} test files, jobs ${jobs}${args['dual-stack'] ? ', dual-stack localhost' : ''}`,
  )
  for (const p of chosen) console.log(`  plugin ${p.name}: register(${path.relative(ROOT, p.path)}, ${JSON.stringify(p.opts)})`)

  // rounds[i] = [first run, confirmation run?] for column i
  const rounds = []
  for (const c of columns) rounds.push([await runColumn(fastifyDir, files, c)])
  // a file whose outcome differs between plain and a plugin runs once more in both columns, so
  // that a timing flake on a small machine is told apart from a real collision
  const plain = columns.findIndex((c) => c.name === 'plain')
  if (plain >= 0) {
    for (let i = 0; i < columns.length; i++) {
      if (i === plain) continue
      const keys = new Set([...rounds[plain][0].keys(), ...rounds[i][0].keys()])
      const differing = [...keys].filter((k) => !k.startsWith('(process warnings)') && rounds[plain][0].get(k)?.status !== rounds[i][0].get(k)?.status)
      const again = [...new Set(differing.map((k) => k.split(' > ')[0]))]
      if (!again.length) continue
      console.log(`  confirming ${again.length} file(s) that differ for ${columns[i].name}: ${again.join(', ')}`)
      for (const j of [plain, i]) {
        const extra = await runColumn(fastifyDir, again, columns[j])
        rounds[j][1] = new Map([...(rounds[j][1] ?? []), ...extra])
      }
    }
  }
  // a test's outcome in a column: pass when any round passed (flagged flaky when rounds disagree)
  const outcome = (i, key) => {
    const seen = rounds[i].map((m) => m?.get(key)).filter(Boolean)
    if (!seen.length) return { status: undefined }
    const statuses = new Set(seen.map((r) => r.status))
    const first = seen.find((r) => r.status === 'fail') ?? seen[0]
    return { status: statuses.has('pass') ? 'pass' : first.status, flaky: statuses.size > 1, failure: first.failure }
  }
  let keys = [...new Set(rounds.flatMap((r) => [...r[0].keys()]))].sort()
  // warnings plain prints too are Fastify's own: dropped; elsewhere, a column that printed no such
  // warning passes that row
  keys = keys.filter((key) => {
    if (!key.startsWith('(process warnings) > ')) return true
    if (plain >= 0 && rounds[plain][0].has(key)) return false
    for (const r of rounds) if (!r[0].has(key)) r[0].set(key, { status: 'pass' })
    return true
  })

  const perFile = new Map()
  for (const key of keys) {
    const file = key.split(' > ')[0]
    const counts = perFile.get(file) ?? { n: 0, pass: columns.map(() => 0) }
    counts.n++
    columns.forEach((_, i) => {
      if (outcome(i, key).status === 'pass') counts.pass[i]++
    })
    perFile.set(file, counts)
  }
  const width = Math.max(4, ...[...perFile.keys()].map((f) => f.length))
  console.log(`\n${'file'.padEnd(width)}  tests  ${columns.map((c) => c.name).join('  ')}   (tests passing)`)
  for (const [file, c] of perFile) {
    console.log(`${file.padEnd(width)}  ${String(c.n).padStart(5)}  ${c.pass.map((n, i) => String(n).padStart(columns[i].name.length)).join('  ')}`)
  }

  const GLYPH = { pass: 'pass', fail: 'FAIL', skip: 'skip', todo: 'todo', undefined: '—' }
  const rowsAll = args.rows === 'all'
  const head = ['test', ...columns.map((c) => c.name)]
  const table = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`]
  const notes = []
  const count = { passed: 0, failed: 0, allowed: 0, plainFails: 0, flaky: 0 }
  for (const key of keys) {
    const cells = columns.map((_, i) => outcome(i, key))
    const base = plain >= 0 ? cells[plain] : { status: 'pass' }
    const allow = args.strict ? undefined : allowed[key]
    const row = cells.map((o, i) => {
      let g = GLYPH[o.status] + (o.flaky ? ' (flaky)' : '')
      if (i !== plain && o.status !== 'pass' && base.status === 'pass' && allow) g += ` (allowed ${allow.category}: ${allow.promise})`
      return g
    })
    const changed = cells.some((o) => o.status !== base.status || o.flaky) || base.status === 'fail'
    if (rowsAll || changed) table.push(`| ${key} | ${row.join(' | ')} |`)
    if (base.status !== 'pass') {
      if (base.status === 'fail') count.plainFails++
      continue
    }
    cells.forEach((o, i) => {
      if (i === plain && columns.length > 1) return
      if (o.flaky) count.flaky++
      if (o.status === 'pass') count.passed++
      else if (allow && i !== plain) {
        count.allowed++
        notes.push(`${columns[i].name}: ${key} [allowed ${allow.category}]\n    ${oneLine(o.failure)}`)
      } else {
        count.failed++
        notes.push(`${columns[i].name}: ${key}\n    ${oneLine(o.failure)}`)
      }
    })
  }
  if (!rowsAll) table.push(`(${keys.length} tests; rows shown: those whose outcome is not the same in every column — --rows=all for every test)`)
  console.log(`\n${table.join('\n')}`)
  if (notes.length) console.log(`\nwhy (first failing round):\n${notes.join('\n')}`)
  const out = path.join(workdir, 'results.json')
  fs.writeFileSync(
    out,
    JSON.stringify({ columns: columns.map((c) => c.name), tests: Object.fromEntries(keys.map((k) => [k, columns.map((_, i) => outcome(i, k))])) }, null, 1),
  )
  console.log(`\nfull results: ${out}`)
  if (count.plainFails) console.log(`${count.plainFails} test(s) fail plain (not counted)`)
  if (count.flaky) console.log(`${count.flaky} outcome(s) flaky across rounds (counted as passed when any round passed)`)
  if (count.allowed)
    console.log(
      `${count.allowed} allowed divergence(s) listed in expected-collisions.json (b: the contract over Fastify's default, c: internals; --strict counts them)`,
    )
  console.log(`${count.passed} passed, ${count.failed} failed`)
  process.exitCode = count.failed ? 1 : 0
}

main().catch((err) => {
  console.error(err)
  process.exit(2)
})
