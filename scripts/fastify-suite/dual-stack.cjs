'use strict'
// Preloaded with --dual-stack: `localhost` resolves to 127.0.0.1 and ::1, as on most developer
// machines and CI images, so that Fastify's listen() on 'localhost' also opens its secondary
// server on ::1. Both are loopback; no other name is touched.
const dns = require('node:dns')

const LOCALHOST = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
]
function addresses(options) {
  const family = typeof options === 'number' ? options : options?.family
  return LOCALHOST.filter((a) => !family || family === a.family || family === `IPv${a.family}`)
}

const lookup = dns.lookup
dns.lookup = function (hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options
    options = undefined
  }
  if (hostname !== 'localhost') {
    return options === undefined ? lookup.call(this, hostname, callback) : lookup.call(this, hostname, options, callback)
  }
  const list = addresses(options)
  process.nextTick(() => {
    if (options?.all)
      callback(
        null,
        list.map((a) => ({ ...a })),
      )
    else callback(null, list[0].address, list[0].family)
  })
  return {}
}

const lookupAsync = dns.promises.lookup
dns.promises.lookup = async function (hostname, options) {
  if (hostname !== 'localhost') return lookupAsync.call(this, hostname, options)
  const list = addresses(options)
  return options?.all ? list.map((a) => ({ ...a })) : { ...list[0] }
}
