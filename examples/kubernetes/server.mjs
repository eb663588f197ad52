// The app of deployment.yaml: a bare node:http server with readiness and liveness routes.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { graceful, requestSignal } from '@quiesce/core'

const server = http.createServer(async (req, res) => {
  if (req.url === '/readyz') return g.readiness(req, res) // 200, then 503 from SIGTERM on (D4)
  if (req.url === '/livez') return g.liveness(req, res) // 200 while the process answers, draining or not
  if (req.url === '/slow') {
    // slow work gets the request's signal: it stops if the client leaves or the deadline comes (D6, D10)
    await sleep(3_000, undefined, { signal: requestSignal(req) }).catch(() => {})
  }
  res.end('hello\n')
})

const g = graceful(server, {
  // keep serving (with Connection: close) while the endpoint removal reaches kube-proxy, the
  // ingress and the load balancer; only then close the listener
  readinessDelay: Number(process.env.READINESS_DELAY_MS ?? 5_000),
  // from SIGTERM (the announce phase included) to the deadline
  timeout: 20_000,
  hooksTimeout: 5_000,
  // terminationGracePeriodSeconds × 1000 (minus a preStop sleep, if you use one): quiesce warns at
  // start-up and shortens its own deadline if timeout + hooksTimeout does not fit (D19)
  budget: Number(process.env.TERMINATION_GRACE_MS ?? 30_000),
})
g.onShutdown(
  async () => {
    /* close the database pool… */
  },
  { name: 'db' },
)

server.listen(Number(process.env.PORT ?? 8080))
