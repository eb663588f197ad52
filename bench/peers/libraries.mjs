// The columns of `pnpm bench:peers`: quiesce, bare Node and the peers, each wired the way its
// README tells users to (the code itself is in ../lib/server.mjs, one `case` per variant).
// `deadline`: the library has a shutdown time limit. `deadlineSignal` / `clientSignal`: the
// handler can learn of the deadline / of the client leaving through a per-request signal.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
function version(name) {
  try {
    return JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version
  } catch {
    // packages whose `exports` hide package.json
    try {
      return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
    } catch {
      return '?'
    }
  }
}

export const libraries = [
  {
    key: 'quiesce',
    label: 'quiesce',
    variant: 'quiesce',
    version: version('@quiesce/core'),
    setup: 'graceful(server, { timeout })',
    deadline: true,
    deadlineSignal: true,
    clientSignal: true,
  },
  {
    key: 'bare',
    label: 'server.close()',
    variant: 'bare',
    version: `Node ${process.version}`,
    setup: "process.on('SIGTERM', () => server.close())",
    deadline: false,
  },
  {
    key: 'http-terminator',
    label: 'http-terminator',
    variant: 'http-terminator',
    version: version('http-terminator'),
    setup: "createHttpTerminator({ server, gracefulTerminationTimeout: timeout }); process.on('SIGTERM', () => terminator.terminate())",
    deadline: true,
  },
  {
    key: 'stoppable',
    label: 'stoppable',
    variant: 'stoppable',
    version: version('stoppable'),
    setup: "stoppable(server, timeout); process.on('SIGTERM', () => server.stop())",
    deadline: true,
  },
  {
    key: 'terminus',
    label: '@godaddy/terminus',
    variant: 'terminus',
    version: version('@godaddy/terminus'),
    setup: "createTerminus(server, { timeout, healthChecks: { '/healthcheck': … } })",
    deadline: true,
  },
  {
    key: 'http-graceful-shutdown',
    label: 'http-graceful-shutdown',
    variant: 'http-graceful-shutdown',
    version: version('http-graceful-shutdown'),
    setup: 'gracefulShutdown(server, { timeout })',
    deadline: true,
  },
  {
    key: 'close-with-grace',
    label: 'close-with-grace',
    variant: 'close-with-grace',
    version: version('close-with-grace'),
    setup: 'closeWithGrace({ delay: timeout }, async () => { await new Promise((r) => server.close(r)) })',
    deadline: true,
  },
  {
    key: 'lightship',
    label: 'lightship + http-terminator',
    variant: 'lightship',
    version: version('lightship'),
    setup:
      'createLightship({ detectKubernetes: false, port: 0, shutdownDelay: 0, gracefulShutdownTimeout: timeout, shutdownHandlerTimeout: timeout }); lightship.registerShutdownHandler(() => terminator.terminate())',
    deadline: true,
  },
  {
    key: 'fastify',
    label: 'Fastify close()',
    variant: 'fastify',
    version: version('fastify'),
    setup: "Fastify() (defaults: forceCloseConnections 'idle', return503OnClosing true); process.on('SIGTERM', () => app.close())",
    deadline: false,
    clientSignal: true, // request.signal (Fastify ≥ 5.8): client abort and handler timeout, not shutdown
  },
  {
    key: 'fastify+quiesce',
    label: 'Fastify + @quiesce/fastify',
    variant: 'fastify+quiesce',
    version: version('@quiesce/core'),
    setup: 'app.register(gracefulPlugin, { timeout })',
    deadline: true,
    deadlineSignal: true,
    clientSignal: true,
    needsFastifyAdapter: true,
  },
]
