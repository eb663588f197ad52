import type { Target } from './fixtures/app.js'
import { expressTarget } from './fixtures/express.js'
import { fastifyTarget } from './fixtures/fastify.js'
import { koaTarget } from './fixtures/koa.js'
import { nodeTarget } from './fixtures/node.js'

/** Every target runs every case: bare node:http, Express, Koa and Fastify. */
export const targets: Target[] = [nodeTarget, expressTarget, koaTarget, fastifyTarget]
