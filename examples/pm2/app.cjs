'use strict'
// A plain node:http app under PM2 (cluster mode): quiesce drains it on PM2's SIGINT (reload, stop)
// or its `shutdown` message (shutdown_with_message), inside kill_timeout (D19).
const http = require('node:http')
const { graceful, requestSignal } = require('@quiesce/core')
const { notifyReady } = require('@quiesce/core/cluster')

const server = http.createServer(async (req, res) => {
  if (req.url === '/ready') return g.readiness(req, res)
  if (req.url === '/slow') {
    // finishes during a reload, or is told "shutdown deadline" in time to clean up
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 2000)
      requestSignal(req).addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          resolve()
        },
        { once: true },
      )
    })
  }
  res.end(`hello from ${process.env.NODE_APP_INSTANCE} (pid ${process.pid})\n`)
})

// timeout + hooksTimeout = 9 s < kill_timeout (10 s) in ecosystem.config.cjs: no start-up warning
const g = graceful(server, { timeout: 6000, hooksTimeout: 3000 })
g.onShutdown(
  async () => {
    /* close the database pool… */
  },
  { name: 'db' },
)

server.listen(Number(process.env.PORT ?? 3000), () => {
  // with `wait_ready: true`, PM2 signals the old instance only after this (not at `listening`)
  notifyReady()
})
