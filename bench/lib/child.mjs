// Parent side of a server child process: start it, talk to it, wait for its reports, stop it by PID.
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { epoch } from './raw.mjs'

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url))
const tmp = mkdtempSync(path.join(tmpdir(), 'quiesce-bench-'))
let seq = 0
/** Every child still running, so that the parent can stop them by PID whatever happens. */
const live = new Set()
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

export class ServerChild {
  /** @type {import('node:child_process').ChildProcess} */
  proc
  port = 0
  messages = []
  exitedAt = null
  exitCode = null
  stderr = ''
  #waiters = new Set()

  /** Starts `variant` and resolves once it listens. */
  static async start(variant, config = {}, { gc = false, node = process.env.BENCH_NODE || process.execPath, ulimit = 0 } = {}) {
    const c = new ServerChild()
    const resultFile = path.join(tmp, `result-${process.pid}-${++seq}.json`)
    c.resultFile = resultFile
    const execArgv = gc ? ['--expose-gc'] : []
    // a raised `ulimit -n` (bulk sockets): the child runs through a shell that raises it, then execs node
    const viaShell = ulimit > 0
    c.proc = fork(
      viaShell ? '-c' : SERVER,
      viaShell
        ? [`ulimit -n ${ulimit} && exec "$0" ${execArgv.join(' ')} "$@"`, node, SERVER, variant, JSON.stringify({ ...config, resultFile })]
        : [variant, JSON.stringify({ ...config, resultFile })],
      {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        execPath: viaShell ? '/bin/bash' : node,
        execArgv: viaShell ? [] : execArgv,
        env: { ...process.env, NODE_ENV: 'production' },
      },
    )
    live.add(c.proc)
    c.proc.stderr.on('data', (d) => {
      c.stderr = (c.stderr + d).slice(-4000)
    })
    c.proc.on('message', (m) => {
      m.receivedAt = epoch()
      c.messages.push(m)
      c.#wake()
    })
    c.proc.on('exit', (code, signal) => {
      c.exitedAt = epoch()
      c.exitCode = code ?? signal
      live.delete(c.proc)
      c.#wake()
    })
    const ready = await c.next('ready', 15_000)
    if (!ready) {
      c.kill()
      const lines = c.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
      const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.at(-1) ?? `exit ${c.exitCode}`
      throw new Error(`${variant} did not start: ${why}`)
    }
    c.port = ready.port
    return c
  }

  #wake() {
    for (const w of [...this.#waiters]) w()
  }

  /** Waits for the first message of `type` not yet taken (or the child's exit, or `ms`): the message or null. */
  next(type, ms) {
    const take = () => {
      const i = this.messages.findIndex((m) => m.type === type && !m.taken)
      if (i < 0) return null
      this.messages[i].taken = true
      return this.messages[i]
    }
    const found = take()
    if (found) return Promise.resolve(found)
    return new Promise((resolve) => {
      const check = () => {
        const m = take()
        if (m === null && this.exitedAt === null) return
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve(m)
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        resolve(take())
      }, ms)
      this.#waiters.add(check)
    })
  }

  /** Messages of `type` received so far. */
  all(type) {
    return this.messages.filter((m) => m.type === type)
  }

  send(msg) {
    if (this.proc.connected) this.proc.send(msg)
  }

  async request(cmd, type, ms = 15_000) {
    this.send({ cmd })
    const m = await this.next(type, ms)
    if (!m) throw new Error(`no ${type} reply to ${cmd}: ${this.stderr}`)
    return m
  }

  /**
   * Waits until the server emitted 'close' or the process exited, up to `ms`.
   * Resolves with { closedAt, signalAt, shutdownAt, lastFinish, exitedAt } (epoch ms) or null.
   */
  async whenClosed(ms) {
    const m = await this.next('closed', ms)
    let closed = m
    if (!closed) {
      try {
        closed = JSON.parse(readFileSync(this.resultFile, 'utf8')) // written before a library's exit cut IPC
      } catch {
        closed = null
      }
    }
    if (!closed && this.exitedAt === null) return null
    return {
      closedAt: closed?.at ?? null,
      signalAt: closed?.signalAt ?? null,
      shutdownAt: closed?.shutdownAt ?? null,
      lastFinish: closed?.lastFinish ?? null,
      lastSocketClose: closed?.lastSocketClose ?? null,
      lastSocketFin: closed?.lastSocketFin ?? null,
      lastClientFin: closed?.lastClientFin ?? null,
      /** server CPU µs from the trigger to 'close' */
      cpuUs: closed?.cpuUs ?? null,
      exitedAt: this.exitedAt,
      /** whichever came first: the server's close, or the process's end */
      doneAt: Math.min(closed?.at ?? Infinity, this.exitedAt ?? Infinity),
    }
  }

  signal(name = 'SIGTERM') {
    const at = epoch()
    if (this.exitedAt === null) this.proc.kill(name)
    return at
  }

  kill() {
    if (this.exitedAt === null) this.proc.kill('SIGKILL')
    live.delete(this.proc)
  }

  async stop() {
    if (this.exitedAt !== null) return
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.kill()
    await exited
  }
}
