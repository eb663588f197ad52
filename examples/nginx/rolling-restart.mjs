#!/usr/bin/env node
// A rolling restart behind nginx, on this machine: nginx on 127.0.0.1 with nginx.conf.template
// (pooled upstream keep-alive, no active health checks), two instances of
// examples/load-balancer/app.mjs behind it, a keep-alive GET + POST load that never retries,
// and each instance restarted in turn (SIGTERM → drain → exit → new process on the same port →
// nginx sends it requests again after fail_timeout). Prints the failures (there should be none)
// and checks every POST ran exactly once. Needs nginx (apt-get install nginx-light) and a build.
//
//   node examples/nginx/rolling-restart.mjs [--restarts 4]
import { main } from '../load-balancer/rolling-restart.mjs'

await main('nginx')
