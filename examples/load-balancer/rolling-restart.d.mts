// Types for rolling-restart.mjs (the `proxies` test project imports it).

export type ProxyName = 'haproxy' | 'nginx' | 'caddy'

export interface RollingRestartOptions {
  proxy: ProxyName
  /** Instances restarted one after another, alternating a, b, a, … Default 4. */
  restarts?: number
  /** Keep-alive clients through the proxy, one request at a time each. Default 8. */
  lanes?: number
  /** Think time between a client's requests: uniformly 0…maxThinkMs. Default 10. */
  maxThinkMs?: number
  /** Requests answered through the proxy before the first restart (warm pools). Default 500. */
  warmup?: number
  /** Environment for the app instances over the proxy's own (READINESS_DELAY_MS, IDLE_GRACE_MS, …): to measure what a setting changes. */
  appEnv?: Record<string, string>
  log?: (line: string) => void
  /** Keep the temp dir (configs, ledgers) even when everything passed. */
  keepDir?: boolean
}

export interface RestartRecord {
  instance: 'a' | 'b'
  oldPid: number
  newPid: number
  exitCode: number | null
  exitSignal: NodeJS.Signals | null
  /** ms from SIGTERM to the old process's exit. */
  exitedMs: number
  /** ms from SIGTERM to the new process listening on the same port. */
  listeningMs: number
  /** ms from SIGTERM to the first answer from the new process through the proxy. */
  servingMs: number
  /** HAProxy: ms from SIGTERM to "Server app/<name> is DOWN"; Caddy: to its active health check's first failure of the instance. null for nginx. */
  markedDownMs: number | null
  /** The old process's last quiesce log line (its drain report). */
  report: string | null
}

export interface RequestOutcome {
  id: string
  method: 'GET' | 'POST'
  ok: boolean
  reused: boolean
  code?: string
  instance?: number
}

export interface RollingRestartResult {
  proxy: ProxyName
  dir: string
  durationMs: number
  restarts: RestartRecord[]
  requests: number
  posts: number
  failures: RequestOutcome[]
  executedTwice: string[]
  postsExecutedTwice: string[]
  postsExecutedOnce: number
  answeredButNotExecuted: string[]
  executedButNeverSent: string[]
  /** Proxy log lines that point at a lost or retried request (see `proxies[…].unexpected`). */
  unexpectedProxyLog: string[]
  proxyLog: string[]
}

export function rollingRestart(options: RollingRestartOptions): Promise<RollingRestartResult>
export function describe(result: RollingRestartResult): string
export function passed(result: RollingRestartResult): boolean
export function findBinary(name: string): string | null
export function substitute(text: string, values: Record<string, string | number>): string
export function main(proxy: ProxyName, argv?: string[]): Promise<void>
