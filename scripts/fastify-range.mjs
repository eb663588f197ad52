#!/usr/bin/env node
// Pins @quiesce/fastify on the lowest and the highest Fastify of its peer range (^5): installs
// each into .cache/fastify-range/<version> with npm, registers the built plugin on it, and checks
// (1) Fastify's private list of extra listeners (`fastify.serverBindings`, read by
// packages/fastify/src/internals.ts) is still where the plugin looks, and (2) a request in flight
// at fastify.close() is answered whole with `Connection: close`. The packages must be built first.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const versions = process.argv.slice(2).length ? process.argv.slice(2) : ['5.0.0', '5']
const check = `
const path = require('node:path')
const net = require('node:net')
const Fastify = require('fastify')
const { gracefulPlugin } = require(${JSON.stringify(path.join(root, 'packages/fastify/dist/index.cjs'))})
;(async () => {
  const fastify = Fastify({ logger: false })
  await fastify.register(gracefulPlugin, { signals: false, logger: false, timeout: 3000 })
  fastify.get('/slow', async () => { await new Promise((r) => setTimeout(r, 200)); return 'slow' })
  await fastify.listen({ port: 0, host: 'localhost' })
  let bindings
  for (let o = fastify; o !== null; o = Object.getPrototypeOf(o)) for (const s of Object.getOwnPropertySymbols(o)) if (s.description === 'fastify.serverBindings') bindings = o[s]
  if (!Array.isArray(bindings)) throw new Error('fastify.serverBindings is gone: packages/fastify/src/internals.ts must change')
  const listeners = fastify.addresses().length
  if (fastify.graceful.servers.length !== listeners) throw new Error('not every listener is drained: ' + fastify.graceful.servers.length + ' of ' + fastify.addresses().length)
  const socket = net.connect(fastify.server.address().port, '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8').on('data', (d) => { text += d })
  const socketClosed = new Promise((r) => socket.on('close', r))
  socket.write('GET /slow HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
  await new Promise((r) => setTimeout(r, 50))
  await fastify.close()
  await socketClosed
  if (!/^HTTP\\/1.1 200/.test(text) || !/connection: close/i.test(text) || !text.endsWith('slow')) throw new Error('in-flight request not answered whole with Connection: close:\\n' + text)
  console.log('fastify ' + require('fastify/package.json').version + ': serverBindings found, ' + listeners + ' listener(s) drained, in-flight request answered with Connection: close')
})().catch((err) => { console.error(err); process.exit(1) })
`
let failed = false
for (const v of versions) {
  const dir = path.join(root, '.cache', 'fastify-range', v)
  fs.mkdirSync(dir, { recursive: true })
  if (!fs.existsSync(path.join(dir, 'package.json'))) fs.writeFileSync(path.join(dir, 'package.json'), '{"private":true}\n')
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `fastify@${v}`, 'fastify-plugin@5'], {
    cwd: dir,
    stdio: 'inherit',
  })
  if (install.status !== 0) {
    failed = true
    continue
  }
  const r = spawnSync(process.execPath, ['-e', check], { cwd: dir, stdio: 'inherit', env: { ...process.env, NODE_PATH: path.join(dir, 'node_modules') } })
  if (r.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
