'use strict'
// Preloaded into every test process (plain and plugin columns): at exit, any process event with
// more listeners than Node's default limit (10) is written to stderr in the shape of a Node
// warning, so that reporter.mjs records it (a plugin that adds a listener per instance leaks).
// Written with fs.writeSync because some test files remove every 'warning' listener.
const fs = require('node:fs')

process.on('exit', () => {
  for (const event of process.eventNames()) {
    const count = process.listenerCount(event)
    if (typeof event === 'string' && count > 10) {
      fs.writeSync(2, `(node:${process.pid}) ProcessListenersWarning: process has ${count} '${event}' listeners at exit\n`)
    }
  }
})
