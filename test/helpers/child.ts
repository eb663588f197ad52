import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

/**
 * Every child still running: a test that times out never reaches its `await using` dispose, so
 * the worker's exit kills what is left (a fixture must never outlive its test run).
 */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL')
})

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** ms from `spawn` to exit */
  at: number
}

/**
 * A fixture script in a real child process, with the close-with-grace handshake: the fixture prints
 * one JSON line `{"ready": …}` on stdout once it listens; the test then talks to it and sends
 * real signals. The child is killed (SIGKILL) on dispose, whatever happened.
 */
export class Child implements AsyncDisposable {
  readonly process: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<Exit>
  #lines: Array<(line: string) => void> = []
  readonly startedAt = performance.now()

  constructor(fixture: string, env: Record<string, string> = {}, args: string[] = []) {
    const file = path.isAbsolute(fixture) ? fixture : path.join(here, '..', 'process', 'fixtures', fixture)
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
    // a production process: not inside a test runner's worker (D11 is off there by design)
    for (const k of ['VITEST', 'VITEST_WORKER_ID', 'VITEST_POOL_ID', 'JEST_WORKER_ID', 'NODE_TEST_CONTEXT', 'NODE_OPTIONS']) {
      if (!(k in env)) delete childEnv[k]
    }
    this.process = spawn(process.execPath, [file, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(this.process)
    this.process.once('exit', () => running.delete(this.process))
    let pending = ''
    this.process.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d
      pending += d
      let i: number
      while ((i = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, i)
        pending = pending.slice(i + 1)
        for (const l of [...this.#lines]) l(line)
      }
    })
    this.process.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d
    })
    this.exited = once(this.process, 'close').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      stdout: this.stdout,
      stderr: this.stderr,
      at: performance.now() - this.startedAt,
    }))
  }

  /** Resolves with the first stdout line for which `match` returns a value. */
  line<T>(match: (line: string) => T | undefined, what = 'a line'): Promise<T> {
    for (const line of this.stdout.split('\n')) {
      const v = match(line)
      if (v !== undefined) return Promise.resolve(v)
    }
    return new Promise((resolve, reject) => {
      const on = (line: string): void => {
        const v = match(line)
        if (v === undefined) return
        this.#lines = this.#lines.filter((l) => l !== on)
        resolve(v)
      }
      this.#lines.push(on)
      void this.exited.then((e) => reject(new Error(`child exited (${e.code ?? e.signal}) before ${what}\nstdout: ${e.stdout}\nstderr: ${e.stderr}`)))
    })
  }

  /** The `{"ready": …}` handshake. */
  ready<T = { port: number }>(): Promise<T> {
    return this.line((l) => {
      if (!l.startsWith('{')) return undefined
      const v = JSON.parse(l) as { ready?: T }
      return v.ready
    }, 'ready')
  }

  /** Resolves when a stdout line contains `text`. */
  says(text: string): Promise<string> {
    return this.line((l) => (l.includes(text) ? l : undefined), JSON.stringify(text))
  }

  kill(signal: NodeJS.Signals): void {
    this.process.kill(signal)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL')
      await this.exited
    }
  }
}
