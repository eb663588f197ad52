'use strict'
// Preloaded (node --require) into the test processes of a plugin column. Fastify's test files
// create instances with require('..') (the package root) or a fresh load of fastify.js
// (proxyquire, an ESM import); this hooks the '.js' loader so that every load of the fastify.js
// under test returns a factory that registers the plugin right after creating the instance —
// what a user writes: const app = Fastify(opts); app.register(gracefulPlugin, opts)
//
// Environment (set by run.mjs): FSUITE_FASTIFY_MAIN (absolute fastify.js), FSUITE_PLUGIN (a
// module file or a package folder), FSUITE_PLUGIN_OPTS (JSON options for register()).
const fs = require('node:fs')
const Module = require('node:module')
const path = require('node:path')

const fastifyMain = process.env.FSUITE_FASTIFY_MAIN
const pluginAt = process.env.FSUITE_PLUGIN
if (!fastifyMain || !pluginAt) throw new Error('register-plugin.cjs: FSUITE_FASTIFY_MAIN and FSUITE_PLUGIN are required')
const opts = JSON.parse(process.env.FSUITE_PLUGIN_OPTS || '{"timeout":10000}')

let loaded
function plugin() {
  if (loaded) return loaded
  let mod
  const manifestPath = path.join(pluginAt, 'package.json')
  if (fs.existsSync(manifestPath)) {
    // a package folder: through its own name (self-reference honours "exports"), else its main
    const req = Module.createRequire(manifestPath)
    try {
      mod = req(JSON.parse(fs.readFileSync(manifestPath, 'utf8')).name)
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND' && err.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw err
      mod = req(pluginAt)
    }
  } else {
    mod = require(pluginAt)
  }
  loaded = mod.gracefulPlugin || mod.default || mod
  if (typeof loaded !== 'function') throw new TypeError(`register-plugin.cjs: ${pluginAt} exports no plugin function`)
  return loaded
}

function withPlugin(factory) {
  function fastify(...args) {
    const app = factory.apply(this, args)
    app.register(plugin(), opts)
    return app
  }
  // keep the factory's own properties (errorCodes, the fastify/default self-references…)
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(factory))) {
    if (key !== 'prototype') Object.defineProperty(fastify, key, descriptor)
  }
  fastify.fastify = fastify
  fastify.default = fastify
  return fastify
}

const compileJs = Module._extensions['.js']
Module._extensions['.js'] = function (module, filename) {
  compileJs.call(this, module, filename)
  if (filename === fastifyMain && typeof module.exports === 'function') module.exports = withPlugin(module.exports)
}
