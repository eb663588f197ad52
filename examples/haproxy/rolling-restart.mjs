#!/usr/bin/env node
// A rolling restart behind HAProxy, on this machine: HAProxy on 127.0.0.1 with haproxy.cfg, two
// instances of examples/load-balancer/app.mjs behind it, a keep-alive GET + POST load that never
// retries, and each instance restarted in turn (SIGTERM → drain → exit → new process on the
// same port → HAProxy sees it UP). Prints the failures (there should be none) and checks every
// POST ran exactly once. Needs haproxy (apt-get install haproxy) and a build (pnpm build).
//
//   node examples/haproxy/rolling-restart.mjs [--restarts 4]
import { main } from '../load-balancer/rolling-restart.mjs'

await main('haproxy')
