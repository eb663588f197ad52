// Zero-downtime restarts with node:cluster. One file, two roles:
//   node examples/cluster/server.mjs          primary + 2 workers on :3000
//   kill -HUP <primary pid>                   rolling restart: new worker up, old one drains, one at a time
//   Ctrl+C / kill -TERM <primary pid>         every worker drains, then the primary exits 0
import cluster from 'node:cluster'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { graceful, requestSignal } from '@quiesce/core'
import { gracefulCluster } from '@quiesce/core/cluster'

const port = Number(process.env.PORT ?? 3000)

if (cluster.isPrimary) {
  gracefulCluster({
    workers: Number(process.env.WORKERS ?? 2),
    // above the workers' timeout + hooksTimeout (10 s + 4 s): a worker is SIGKILLed only if its own deadline failed
    killTimeout: 15_000,
  })
  console.log(`primary ${process.pid}: \`kill -HUP ${process.pid}\` restarts the workers one by one; Ctrl+C stops`)
} else {
  const server = http.createServer(async (req, res) => {
    if (req.url === '/slow') {
      // a long request: finishes during a restart, or is cut at the deadline with a reason it can see
      await sleep(3000, undefined, { signal: requestSignal(req) }).catch(() => {})
    }
    res.end(`hello from worker ${process.pid}\n`)
  })
  // the usual quiesce set-up: the worker learns by itself that it runs in a cluster
  const g = graceful(server, { timeout: 10_000, hooksTimeout: 4_000 })
  g.onShutdown(
    async () => {
      /* close the database pool, flush the queue… */
    },
    { name: 'db' },
  )
  server.listen(port, () => console.log(`worker ${process.pid} listening on :${port}`))
}
