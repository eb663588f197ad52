// A rolling restart of two app instances (app.mjs) behind a real proxy on 127.0.0.1, under a
// keep-alive GET + POST load that never retries; afterwards the instances' ledgers prove that
// every POST ran exactly once. Used by examples/haproxy/rolling-restart.mjs,
// examples/nginx/rolling-restart.mjs, examples/caddy/rolling-restart.mjs and the `proxies` test project.
//
// The restart is the one most deployments do with fixed ports (systemd, Docker with a published
// port, a VM): SIGTERM the old process, let it drain and exit, start the new one on the same
// port, and restart the next instance only once the proxy sends traffic to the new one again.
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const examples = path.resolve(here, '..')
const APP = path.join(here, 'app.mjs')
const INSTANCES = ['a', 'b']

/**
 * How each proxy is configured, started, and what quiesce options its backends need.
 * HAProxy: `inter 500 fall 2` health checks on /ready → readinessDelay ≥ 1000 ms (+ margin).
 * nginx: pooled upstream connections (`keepalive`), no active checks → readinessDelay does
 * nothing; idleGrace above the upstream `keepalive_timeout` (2 s) instead.
 */
export const proxies = {
  haproxy: {
    binary: 'haproxy',
    appEnv: { READINESS_DELAY_MS: '1500' },
    async start(dir, ports, run) {
      const cfg = path.join(dir, 'haproxy.cfg')
      fs.copyFileSync(path.join(examples, 'haproxy', 'haproxy.cfg'), cfg)
      // -W: master-worker, which says "Loading success." once it listens; -db: foreground
      const proxy = run('haproxy', findBinary('haproxy'), ['-W', '-db', '-f', cfg], {
        env: { ...process.env, PROXY_PORT: String(ports.proxy), APP_A: String(ports.a), APP_B: String(ports.b) },
      })
      proxy.onLine(/New worker \((\d+)\) forked/, (m) => proxy.extraPids.push(Number(m[1])))
      await proxy.waitLine(/Loading success/, 15_000, 'haproxy to start')
      return proxy
    },
    /** A log line the proxy writes that no restart should cause. */
    unexpected: (line) => /\[ALERT\]/.test(line),
    stopSignal: 'SIGTERM',
  },
  nginx: {
    binary: 'nginx',
    appEnv: { IDLE_GRACE_MS: '4000' },
    async start(dir, ports, run) {
      const template = fs.readFileSync(path.join(examples, 'nginx', 'nginx.conf.template'), 'utf8')
      fs.writeFileSync(path.join(dir, 'nginx.conf'), substitute(template, { PROXY_PORT: ports.proxy, APP_A: ports.a, APP_B: ports.b }))
      fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true })
      const proxy = run('nginx', findBinary('nginx'), ['-p', dir, '-c', 'nginx.conf', '-e', 'stderr', '-g', 'daemon off;'])
      proxy.onLine(/start worker process (\d+)/, (m) => proxy.extraPids.push(Number(m[1])))
      await proxy.waitLine(/start worker process/, 15_000, 'nginx to start')
      return proxy
    },
    // a refused connection to a restarting instance is expected (nginx then tries the other one,
    // the request was never sent); any other upstream error means nginx lost or retried a request
    unexpected: (line) => /\[(error|crit|alert|emerg)\]/.test(line) && !/connect\(\) failed \(111: Connection refused\)/.test(line),
    stopSignal: 'SIGQUIT',
  },
  caddy: {
    binary: 'caddy',
    appEnv: { READINESS_DELAY_MS: '1500' },
    async start(dir, ports, run) {
      const cfg = path.join(dir, 'Caddyfile')
      fs.copyFileSync(path.join(examples, 'caddy', 'Caddyfile'), cfg)
      // `admin off` in the Caddyfile: no admin endpoint on a fixed port; Caddy's data and config
      // directories (certificates, autosave) in the temp dir, not in $HOME
      const proxy = run('caddy', findBinary('caddy'), ['run', '--config', cfg, '--adapter', 'caddyfile'], {
        env: {
          ...process.env,
          PROXY_PORT: String(ports.proxy),
          APP_A: String(ports.a),
          APP_B: String(ports.b),
          XDG_DATA_HOME: path.join(dir, 'caddy-data'),
          XDG_CONFIG_HOME: path.join(dir, 'caddy-config'),
        },
      })
      await proxy.waitLine(/"msg":"serving initial configuration"/, 15_000, 'caddy to start')
      return proxy
    },
    // Caddy logs JSON lines. The active health checker logs, at level error, the checks that
    // failed to connect to a restarting instance: expected. Any other error (a 502 answered to a
    // client, a request that failed after it was sent) means Caddy lost or retried a request.
    unexpected: (line) => /"level":"(error|panic|fatal)"/.test(line) && !/"logger":"http\.handlers\.reverse_proxy\.health_checker\.active"/.test(line),
    stopSignal: 'SIGTERM',
  },
}

/** `${NAME}` → value for the given names only (nginx uses `$name` for its own variables). */
export function substitute(text, values) {
  return text.replace(/\$\{([A-Z_]+)\}/g, (all, name) => (name in values ? String(values[name]) : all))
}

/** The proxy's binary, also in the sbin directories a non-root PATH may lack; null if absent. */
export function findBinary(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {}
  }
  return null
}

/** Rejects with a message naming what was awaited when `promise` takes longer than `ms`. */
function within(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Free ports on 127.0.0.1, all held until every one is known (so they differ). */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = net.createServer().listen(0, '127.0.0.1')
      await once(s, 'listening')
      return s
    }),
  )
  const ports = servers.map((s) => s.address().port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

/** A child process whose output lines can be awaited; stopped by PID at the end, whatever happens. */
class Child {
  constructor(name, file, args, options = {}) {
    this.name = name
    this.proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    this.pid = this.proc.pid
    this.lines = []
    /** PIDs the child started itself (HAProxy's and nginx's workers). */
    this.extraPids = []
    this.events = new EventEmitter()
    this.exited = new Promise((resolve, reject) => {
      this.proc.once('exit', (code, signal) => resolve({ code, signal }))
      this.proc.once('error', reject)
    })
    this.exited.catch(() => {})
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line)
        this.events.emit('line', line)
      })
    }
  }

  get running() {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  onLine(re, fn) {
    this.events.on('line', (line) => {
      const m = re.exec(line)
      if (m) fn(m, line)
    })
  }

  /** The first line (already seen, or to come) matching `re`. */
  waitLine(re, ms, what) {
    const seen = this.lines.find((l) => re.test(l))
    if (seen !== undefined) return Promise.resolve(re.exec(seen))
    const found = new Promise((resolve, reject) => {
      const on = (line) => {
        const m = re.exec(line)
        if (m) {
          this.events.off('line', on)
          resolve(m)
        }
      }
      this.events.on('line', on)
      this.exited.then(
        ({ code, signal }) => reject(new Error(`${this.name} exited (${code ?? signal}) before: ${what}\n${this.lines.slice(-20).join('\n')}`)),
        reject,
      )
    })
    return within(found, ms, `${what} (${this.name}, pid ${this.pid})`)
  }

  /** Stops the process by PID: `signal`, then SIGKILL if it is still there after `ms`. */
  async stop(signal = 'SIGTERM', ms = 10_000) {
    if (this.running) {
      this.proc.kill(signal)
      try {
        await within(this.exited, ms, `${this.name} to exit`)
      } catch {
        this.proc.kill('SIGKILL')
        await this.exited.catch(() => {})
      }
    }
    for (const pid of this.extraPids) {
      try {
        process.kill(pid, 0) // still there after its parent exited?
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    return this.exited.catch(() => ({ code: null, signal: null }))
  }
}

/**
 * Keep-alive clients through the proxy, one request at a time each, never retrying: 60 % GET
 * /work, 40 % POST /orders, every request with an id. Emits 'served' with the answering
 * instance's pid.
 */
class Load extends EventEmitter {
  constructor(port, { lanes, maxThinkMs, requestTimeoutMs }) {
    super()
    this.setMaxListeners(0)
    this.outcomes = []
    this.agent = new http.Agent({ keepAlive: true, maxSockets: lanes })
    this.stopped = false
    this.loops = Array.from({ length: lanes }, (_, lane) => this.#lane(port, lane, maxThinkMs, requestTimeoutMs))
  }

  async #lane(port, lane, maxThinkMs, requestTimeoutMs) {
    for (let n = 0; !this.stopped; n++) {
      const method = Math.random() < 0.4 ? 'POST' : 'GET'
      const id = `${lane}-${n}`
      const outcome = await this.#send(port, method, id, requestTimeoutMs)
      this.outcomes.push(outcome)
      this.emit('outcome', this.outcomes.length)
      if (outcome.ok) this.emit('served', outcome.instance)
      const think = Math.random() * maxThinkMs
      if (think >= 1) await new Promise((resolve) => setTimeout(resolve, think))
    }
  }

  #send(port, method, id, requestTimeoutMs) {
    return new Promise((resolve) => {
      const expected = method === 'GET' ? `ok ${id}` : `created ${id}`
      const req = http.request({
        host: '127.0.0.1',
        port,
        agent: this.agent,
        method,
        path: method === 'GET' ? `/work?id=${id}` : '/orders',
        headers: method === 'POST' ? { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(id) } : {},
      })
      let done = false
      const settle = (o) => {
        if (done) return
        done = true
        resolve({ id, method, reused: req.reusedSocket, ...o })
      }
      req.setTimeout(requestTimeoutMs, () => {
        settle({ ok: false, code: 'no answer' })
        req.destroy()
      })
      req.on('error', (err) => settle({ ok: false, code: err.code ?? err.message }))
      req.on('response', (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          body += d
        })
        res.on('error', (err) => settle({ ok: false, code: err.code ?? err.message }))
        res.on('end', () => {
          const ok = res.statusCode === 200 && body === expected
          settle({ ok, code: ok ? undefined : `${res.statusCode} ${body.slice(0, 80)}`, instance: Number(res.headers['x-instance']) })
        })
      })
      req.end(method === 'POST' ? id : undefined)
    })
  }

  /** Resolves at the first answer from the instance with this pid. */
  servedBy(pid) {
    return new Promise((resolve) => {
      const on = (instance) => {
        if (instance !== pid) return
        this.off('served', on)
        resolve()
      }
      this.on('served', on)
    })
  }

  /** Resolves once `n` requests have an outcome: the proxy's connection pools are warm. */
  answered(n) {
    if (this.outcomes.length >= n) return Promise.resolve()
    return new Promise((resolve) => {
      const on = (count) => {
        if (count < n) return
        this.off('outcome', on)
        resolve()
      }
      this.on('outcome', on)
    })
  }

  async stop() {
    this.stopped = true
    await Promise.all(this.loops)
    this.agent.destroy()
  }
}

/** Every ledger line is "<METHOD> <id>": how often each id ran, over every instance generation. */
function readLedgers(dir) {
  const runs = new Map()
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('ledger-'))) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (line === '') continue
      const id = line.slice(line.indexOf(' ') + 1)
      runs.set(id, (runs.get(id) ?? 0) + 1)
    }
  }
  return runs
}

/**
 * Runs the whole scenario and returns what happened; throws only when the setup itself fails
 * (a proxy that does not start, an instance that never comes back). Every process it started is
 * stopped by PID before it returns or throws.
 */
export async function rollingRestart({
  proxy: proxyName,
  restarts = 4,
  lanes = 8,
  maxThinkMs = 10,
  warmup = 500,
  appEnv = {},
  log = () => {},
  keepDir = false,
}) {
  const proxy = proxies[proxyName]
  if (proxy === undefined) throw new TypeError(`proxy must be one of ${Object.keys(proxies).join(', ')}, got ${proxyName}`)
  if (findBinary(proxy.binary) === null)
    throw new Error(`${proxy.binary} is not installed (apt-get install -y ${proxy.binary === 'nginx' ? 'nginx-light' : proxy.binary})`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `quiesce-${proxyName}-`))
  const children = []
  const run = (name, file, args, options) => {
    const child = new Child(name, file, args, options)
    children.push(child)
    return child
  }
  const started = performance.now()
  let ok = false
  try {
    const [proxyPort, portA, portB] = await freePorts(3)
    const ports = { proxy: proxyPort, a: portA, b: portB }
    const generation = { a: 0, b: 0 }
    const startInstance = async (name) => {
      const child = run(`app ${name}#${generation[name]}`, process.execPath, [APP], {
        env: { ...process.env, ...proxy.appEnv, ...appEnv, PORT: String(ports[name]), LEDGER_FILE: path.join(dir, `ledger-${name}-${generation[name]}.log`) },
      })
      await child.waitLine(/^listening on/, 15_000, `instance ${name} to listen`)
      return child
    }
    const instances = {}
    for (const name of INSTANCES) instances[name] = await startInstance(name)
    const proxyProc = await proxy.start(dir, ports, run)
    const unexpected = []
    let stopping = false
    proxyProc.onLine(/.*/, (_, line) => {
      if (!stopping && proxy.unexpected(line)) unexpected.push(line)
    })
    log(`${proxyName} (pid ${proxyProc.pid}) on 127.0.0.1:${ports.proxy} → instances on ${ports.a} and ${ports.b}`)

    // HAProxy says when its health check marks an instance DOWN
    const markedDownAt = {}
    proxyProc.onLine(/Server \w+\/(\w+) is DOWN/, (m) => {
      markedDownAt[m[1]] = performance.now()
    })
    // Caddy says which upstream address its active health check found unhealthy
    const byPort = { [ports.a]: 'a', [ports.b]: 'b' }
    proxyProc.onLine(/"logger":"http\.handlers\.reverse_proxy\.health_checker\.active".*"host":"127\.0\.0\.1:(\d+)"/, (m, line) => {
      if (/unhealthy|status code out of tolerances|failed/.test(line) && byPort[m[1]] !== undefined && markedDownAt[byPort[m[1]]] === undefined)
        markedDownAt[byPort[m[1]]] = performance.now()
    })

    const load = new Load(ports.proxy, { lanes, maxThinkMs, requestTimeoutMs: 15_000 })
    const restartLog = []
    try {
      // both instances serve, and the proxy's pools are warm, before the first restart: a
      // deployment does not restart an instance in the first milliseconds of its traffic
      await within(Promise.all(INSTANCES.map((n) => load.servedBy(instances[n].pid))), 15_000, 'both instances to serve through the proxy')
      await within(load.answered(warmup), 30_000, `${warmup} requests through the proxy`)
      for (let i = 0; i < restarts; i++) {
        const name = INSTANCES[i % INSTANCES.length]
        const old = instances[name]
        const t0 = performance.now()
        delete markedDownAt[name]
        old.proc.kill('SIGTERM')
        const exit = await within(old.exited, 30_000, `${old.name} (pid ${old.pid}) to drain and exit after SIGTERM`)
        const exitedMs = Math.round(performance.now() - t0)
        generation[name]++
        const fresh = await startInstance(name)
        instances[name] = fresh
        const listeningMs = Math.round(performance.now() - t0)
        await within(load.servedBy(fresh.pid), 30_000, `${proxyName} to send requests to ${fresh.name} (pid ${fresh.pid})`)
        const markedDownMs = markedDownAt[name] === undefined ? null : Math.round(markedDownAt[name] - t0)
        const back = {
          instance: name,
          oldPid: old.pid,
          newPid: fresh.pid,
          exitCode: exit.code,
          exitSignal: exit.signal,
          exitedMs,
          listeningMs,
          servingMs: Math.round(performance.now() - t0),
          markedDownMs,
          report: old.lines.filter((l) => l.startsWith('quiesce:')).at(-1) ?? null,
        }
        restartLog.push(back)
        log(
          `restart ${i + 1}/${restarts}: ${name} pid ${old.pid} exited ${exit.code ?? exit.signal} after ${exitedMs} ms` +
            `${markedDownMs === null ? '' : ` (marked DOWN after ${markedDownMs} ms)`}; pid ${fresh.pid} serving after ${back.servingMs} ms`,
        )
      }
    } finally {
      await load.stop()
    }
    const proxyLines = proxyProc.lines.length
    stopping = true
    await proxyProc.stop(proxy.stopSignal)
    for (const name of INSTANCES) await instances[name].stop('SIGTERM')

    const runs = readLedgers(dir)
    const sent = new Set(load.outcomes.map((o) => o.id))
    const posts = load.outcomes.filter((o) => o.method === 'POST')
    const result = {
      proxy: proxyName,
      dir,
      durationMs: Math.round(performance.now() - started),
      restarts: restartLog,
      requests: load.outcomes.length,
      posts: posts.length,
      failures: load.outcomes.filter((o) => !o.ok),
      executedTwice: [...runs].filter(([, n]) => n > 1).map(([id]) => id),
      postsExecutedTwice: posts.filter((o) => (runs.get(o.id) ?? 0) > 1).map((o) => o.id),
      postsExecutedOnce: posts.filter((o) => runs.get(o.id) === 1).length,
      answeredButNotExecuted: load.outcomes.filter((o) => o.ok && !runs.has(o.id)).map((o) => o.id),
      executedButNeverSent: [...runs.keys()].filter((id) => !sent.has(id)),
      unexpectedProxyLog: unexpected,
      proxyLog: proxyProc.lines.slice(0, proxyLines),
    }
    ok = passed(result)
    return result
  } finally {
    // every process, by PID, newest first, also when something above threw
    for (const child of [...children].reverse()) await child.stop()
    if (ok && !keepDir) fs.rmSync(dir, { recursive: true, force: true })
    else for (const child of children) fs.writeFileSync(path.join(dir, `${child.name.replace(/\W+/g, '-')}.log`), child.lines.join('\n') + '\n')
  }
}

/** No client saw a failure, nothing ran twice, and the proxy logged no lost or retried request. */
export function passed(r) {
  return r.failures.length === 0 && r.executedTwice.length === 0 && r.unexpectedProxyLog.length === 0
}

/** One paragraph a person can read. */
export function describe(r) {
  const lines = [
    `${r.proxy}: ${r.restarts.length} restarts in ${(r.durationMs / 1000).toFixed(1)} s, ${r.requests} requests (${r.posts} POSTs), ` +
      `${r.failures.length} failed, ${r.postsExecutedOnce} POSTs executed exactly once, ${r.postsExecutedTwice.length} twice`,
  ]
  for (const f of r.failures.slice(0, 10)) lines.push(`  failed: ${f.method} ${f.id} → ${f.code}${f.reused ? ' (reused socket)' : ''}`)
  for (const l of r.unexpectedProxyLog.slice(0, 10)) lines.push(`  ${r.proxy}: ${l}`)
  return lines.join('\n')
}

/** The command line of examples/<proxy>/rolling-restart.mjs. */
export async function main(proxyName, argv = process.argv.slice(2)) {
  const i = argv.indexOf('--restarts')
  const restarts = i === -1 ? 4 : Number(argv[i + 1])
  if (!Number.isInteger(restarts) || restarts < 1) throw new TypeError(`--restarts must be a whole number ≥ 1, got ${argv[i + 1]}`)
  const r = await rollingRestart({ proxy: proxyName, restarts, log: (line) => console.log(line) })
  console.log(describe(r))
  // kept only when something failed
  if (fs.existsSync(r.dir)) console.log(`configs, ledgers and logs kept in ${r.dir}`)
  process.exitCode = passed(r) ? 0 : 1
}
