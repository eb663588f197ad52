import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { Child, type Exit } from '../helpers/child.js'
import { RawClient, type RawResponse } from '../helpers/raw.js'

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures')

/** `mark <name> <ms>` lines of a child's stdout: name → every timestamp (ms since the epoch). */
export function marks(stdout: string): Map<string, number[]> {
  const m = new Map<string, number[]>()
  for (const line of stdout.split('\n')) {
    const r = /^mark (\S+) ([\d.]+)$/.exec(line)
    if (!r) continue
    m.set(r[1]!, [...(m.get(r[1]!) ?? []), Number(r[2])])
  }
  return m
}

/** The one timestamp of a mark that must have happened exactly once. */
export function once(m: Map<string, number[]>, name: string): number {
  expect(m.get(name), `mark ${name} exactly once`).toHaveLength(1)
  return m.get(name)![0]!
}

export interface Drained {
  child: Child
  exit: Exit
  port: number
  /** the in-flight request's response (sent before the signal, answered after) */
  slow: RawResponse
  /** ms (test clock) from the in-flight response's last byte to the child's exit */
  exitAfterSlow: number
  marks: Map<string, number[]>
}

export interface Scenario {
  env?: Record<string, string>
  /** the in-flight request (the fixture marks `slow:started` when its handler has it) */
  slow?: { path: string; method?: 'GET' | 'POST'; body?: string; headers?: string }
  /** the request the idle keep-alive client makes first */
  fast?: string
  /** opens the stack's long-lived connections; what it returns is handed to `after` */
  before?: (port: number, child: Child) => Promise<unknown>
  /** the exit code the scenario ends with (0 unless something is forced or fails) */
  exitCode?: number
}

/**
 * The scenario every stack runs: a keep-alive client that made one request and is idle, a request
 * in flight, the stack's long-lived connections (`before`), then a real SIGTERM. Asserts the
 * common part: the in-flight request completes 200 with `Connection: close` and its socket is
 * closed after it; the idle socket gets a FIN (no RST, no second response needed); the process
 * exits 0 within a second of the in-flight response's end.
 */
export async function drain(fixture: string, s: Scenario = {}): Promise<Drained & { extra: unknown }> {
  const child = new Child(path.join(fixtures, fixture), s.env ?? {})
  try {
    const { port } = await child.ready()
    const idle = await RawClient.connect(port)
    idle.get(s.fast ?? '/fast')
    const first = await idle.response()
    expect(first.status).toBe(200)
    const extra = s.before ? await s.before(port, child) : undefined
    const busy = await RawClient.connect(port)
    const slow = s.slow ?? { path: '/slow' }
    if (slow.method === 'POST') busy.post(slow.path, slow.body ?? '', slow.headers ?? '')
    else busy.get(slow.path, slow.headers ?? '')
    await child.says('mark slow:started')
    child.kill('SIGTERM')
    const r = await busy.response()
    expect(r.status, r.body).toBe(200)
    expect(r.headers.connection).toBe('close')
    await busy.closed()
    expect(busy.error).toBeNull()
    await idle.closed()
    expect(idle.endedAt, 'the idle socket got a FIN').not.toBeNull()
    expect(idle.error, 'no RST on the idle socket').toBeNull()
    expect(idle.responses).toHaveLength(1)
    const exit = await child.exited
    const exitAfterSlow = child.startedAt + exit.at - r.at
    expect(exit.code, exit.stdout + exit.stderr).toBe(s.exitCode ?? 0)
    expect(exitAfterSlow).toBeLessThan(1000)
    console.log(`${fixture}${s.env ? ' ' + JSON.stringify(s.env) : ''}: in-flight end → exit ${exitAfterSlow.toFixed(0)} ms`)
    return { child, exit, port, slow: r, exitAfterSlow, marks: marks(exit.stdout), extra }
  } catch (err) {
    // say what the child printed: the marks tell how far the shutdown got
    if (err instanceof Error) err.message += `\n--- ${fixture} stdout:\n${child.stdout}\n--- stderr:\n${child.stderr}`
    throw err
  } finally {
    await child[Symbol.asyncDispose]()
  }
}
