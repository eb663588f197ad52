'use strict'
// --plugin=noop: a Fastify plugin that does nothing. Registered on every instance, it must change
// no test's outcome; a difference would mean the wrapping in preload.cjs is wrong, not the plugin.
const fp = require('fastify-plugin')

const gracefulPlugin = fp(
  function noop(_fastify, _opts, done) {
    done()
  },
  { fastify: '5.x', name: 'quiesce-noop' },
)
module.exports = gracefulPlugin
module.exports.gracefulPlugin = gracefulPlugin
module.exports.default = gracefulPlugin
