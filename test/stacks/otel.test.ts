import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { request } from './http.js'

/**
 * OpenTelemetry's NodeSDK (current major) with its http instrumentation, loaded with `--import`
 * as OpenTelemetry documents for ES modules, and an in-process exporter behind a
 * BatchSpanProcessor (fixtures/otel-*.mjs), in a real child process stopped by a real SIGTERM.
 *
 * - The http instrumentation wraps `http.Server.prototype.emit`: inside the handler the active
 *   span must be the one it opened for the request, and an incoming `traceparent` must be its
 *   parent. quiesce's request gate sits on the same 'request' path, so this pins that the gate
 *   keeps the context (it runs the app's listeners inside OpenTelemetry's `emit`).
 * - `g.onShutdown(() => sdk.shutdown())`: the span of a request in flight at SIGTERM is exported
 *   before the process exits (D8: hooks run after the server closed, so the span has ended),
 *   and the report names the hook; exit 0 (D9).
 */
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures')
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const PARENT_ID = 'b7ad6b7169203331'

interface ExportedSpan {
  name: string
  kind: number
  traceId: string
  spanId: string
  parentSpanId: string | null
  attributes: Record<string, unknown>
  ended: boolean
}

const SERVER = 1 // SpanKind.SERVER

async function run(fixture: string): Promise<{
  spans: ExportedSpan[]
  seen: Map<string, { traceId: string; spanId: string }>
  stdout: string
  code: number | null
  slow: Awaited<ReturnType<typeof request>>
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-otel-'))
  const file = path.join(dir, 'spans.jsonl')
  try {
    await using child = new Child(path.join(fixtures, fixture), {
      SPANS_FILE: file,
      NODE_OPTIONS: `--import ${JSON.stringify(path.join(fixtures, 'otel-instrumentation.mjs'))}`,
    })
    const { port } = await child.ready()
    // one request before the signal (no incoming trace context) …
    expect((await request(port, '/fast')).body).toBe('fast')
    // … and one in flight when SIGTERM arrives, continuing the client's trace
    const answer = request(port, '/slow', { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } })
    await child.says('started /slow')
    child.kill('SIGTERM')
    const slow = await answer
    const exit = await child.exited
    const spans = fs.existsSync(file)
      ? fs
          .readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as ExportedSpan)
      : []
    const seen = new Map<string, { traceId: string; spanId: string }>()
    for (const m of exit.stdout.matchAll(/^span (\S+) (\S+) (\S+)$/gm)) seen.set(m[3]!, { traceId: m[1]!, spanId: m[2]! })
    return { spans, seen, stdout: exit.stdout + exit.stderr, code: exit.code, slow }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe('OpenTelemetry NodeSDK with the http instrumentation', () => {
  it("D2 D8 D9 SIGTERM with a traced request in flight: it completes, its span (the handler's active span, child of the incoming traceparent) is exported by sdk.shutdown() in a cleanup hook before exit 0", async () => {
    const r = await run('otel-server.mjs')
    expect(r.slow.status).toBe(200)
    expect(r.slow.body).toBe('slow')
    expect(r.slow.headers.connection).toBe('close')
    expect(r.code, r.stdout).toBe(0)

    // the handler ran inside the request's span
    const slowSeen = r.seen.get('/slow')
    const fastSeen = r.seen.get('/fast')
    expect(slowSeen, r.stdout).toBeDefined()
    expect(fastSeen, r.stdout).toBeDefined()
    expect(slowSeen!.traceId).toBe(TRACE_ID)
    expect(fastSeen!.spanId).not.toBe('-')

    // both server spans reached the exporter before the exit, ended, with their status codes
    const server = r.spans.filter((s) => s.kind === SERVER)
    const slowSpan = server.find((s) => s.spanId === slowSeen!.spanId)
    const fastSpan = server.find((s) => s.spanId === fastSeen!.spanId)
    expect(slowSpan, JSON.stringify(r.spans)).toBeDefined()
    expect(fastSpan, JSON.stringify(r.spans)).toBeDefined()
    expect(slowSpan!.traceId).toBe(TRACE_ID)
    expect(slowSpan!.parentSpanId).toBe(PARENT_ID)
    expect(slowSpan!.ended).toBe(true)
    expect(slowSpan!.attributes['http.status_code'] ?? slowSpan!.attributes['http.response.status_code']).toBe(200)
    expect(fastSpan!.traceId).not.toBe(TRACE_ID)

    // the report is one line and names the hook; it came after the hook (the spans were out)
    const reports = r.stdout.split('\n').filter((l) => l.startsWith('quiesce: shutdown ('))
    expect(reports).toHaveLength(1)
    expect(reports[0]).toMatch(/^quiesce: shutdown \(signal SIGTERM\) drained in \d+ ms — 1 request completed.*hooks: opentelemetry ok/)
  })

  it('control: without the cleanup hook, the span of the request in flight at SIGTERM is lost (BatchSpanProcessor still held it)', async () => {
    const r = await run('otel-no-hook.mjs')
    expect(r.slow.status).toBe(200)
    expect(r.code, r.stdout).toBe(0)
    const slowSeen = r.seen.get('/slow')
    expect(slowSeen?.traceId).toBe(TRACE_ID)
    expect(r.spans.find((s) => s.spanId === slowSeen!.spanId)).toBeUndefined()
  })

  it('D3 D4 requests that arrive during the drain (kept-alive connection, new connection in the announce phase) run in their own spans, and every span is exported before exit 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-otel-'))
    const file = path.join(dir, 'spans.jsonl')
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      await using child = new Child(path.join(fixtures, 'otel-drain.mjs'), {
        SPANS_FILE: file,
        NODE_OPTIONS: `--import ${JSON.stringify(path.join(fixtures, 'otel-instrumentation.mjs'))}`,
      })
      const { port } = await child.ready()
      expect((await request(port, '/fast?n=before', { agent })).headers.connection).toBe('keep-alive')
      const slow = request(port, '/slow')
      await child.says('started /slow')
      child.kill('SIGTERM')
      await child.says('quiesce: draining server (SIGTERM)')
      // the announce phase: the kept-alive socket carries one more request, then closes
      const kept = await request(port, '/fast?n=kept', { agent, headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } })
      expect(kept.status).toBe(200)
      expect(kept.headers.connection).toBe('close')
      // a new connection while the listener is still open
      const fresh = await request(port, '/fast?n=fresh')
      expect(fresh.headers.connection).toBe('close')
      expect((await slow).body).toBe('slow')
      const exit = await child.exited
      expect(exit.code, exit.stdout + exit.stderr).toBe(0)

      const seen = new Map<string, { traceId: string; spanId: string }>()
      for (const m of exit.stdout.matchAll(/^span (\S+) (\S+) (\S+)$/gm)) seen.set(m[3]!, { traceId: m[1]!, spanId: m[2]! })
      const spans = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ExportedSpan)
        .filter((s) => s.kind === SERVER)
      for (const url of ['/fast?n=before', '/slow', '/fast?n=kept', '/fast?n=fresh']) {
        const handler = seen.get(url)
        expect(handler?.spanId, `${url}: ${exit.stdout}`).toMatch(/^[0-9a-f]{16}$/)
        const span = spans.find((s) => s.spanId === handler!.spanId)
        expect(span, `${url}: no exported span ${handler!.spanId}`).toBeDefined()
        expect(span!.ended).toBe(true)
      }
      expect(seen.get('/fast?n=kept')!.traceId).toBe(TRACE_ID)
      expect(new Set([...seen.values()].map((v) => v.spanId)).size).toBe(4)
    } finally {
      agent.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("D13 a request held by pause({ mode: 'hold' }) and dispatched at resume() runs inside its own span (the incoming traceparent its parent)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiesce-otel-'))
    const file = path.join(dir, 'spans.jsonl')
    try {
      await using child = new Child(path.join(fixtures, 'otel-hold.mjs'), {
        SPANS_FILE: file,
        NODE_OPTIONS: `--import ${JSON.stringify(path.join(fixtures, 'otel-instrumentation.mjs'))}`,
      })
      const { port, control } = await child.ready<{ port: number; control: number }>()
      expect((await request(control, '/pause')).body).toBe('paused')
      const held = request(port, '/held', { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } })
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(child.stdout).not.toContain('/held') // parked, the handler has not run
      expect((await request(control, '/resume')).body).toBe('running')
      const r = await held
      expect(r.status).toBe(200)
      child.kill('SIGTERM')
      const exit = await child.exited
      expect(exit.code, exit.stdout + exit.stderr).toBe(0)
      const m = /^span (\S+) (\S+) \/held$/m.exec(exit.stdout)
      expect(m, exit.stdout).not.toBeNull()
      expect(m![1]).toBe(TRACE_ID)
      const spans = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ExportedSpan)
        .filter((s) => s.kind === SERVER)
      const span = spans.find((s) => s.spanId === m![2])
      expect(span, JSON.stringify(spans)).toBeDefined()
      expect(span!.parentSpanId).toBe(PARENT_ID)
      expect(span!.attributes['http.status_code'] ?? span!.attributes['http.response.status_code']).toBe(200)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
