#!/usr/bin/env node
// A rolling restart behind Caddy 2, on this machine: Caddy on 127.0.0.1 with the Caddyfile here
// (active health checks on /ready, pooled upstream keep-alive, only never-sent requests retried),
// two instances of examples/load-balancer/app.mjs behind it, a keep-alive GET + POST load that
// never retries, and each instance restarted in turn (SIGTERM → drain → exit → new process on the
// same port → Caddy sends it requests again). Prints the failures (there should be none) and
// checks every POST ran exactly once. Needs caddy (apt-get install caddy) and a build (pnpm build).
//
//   node examples/caddy/rolling-restart.mjs [--restarts 4]
import { main } from '../load-balancer/rolling-restart.mjs'

await main('caddy')
