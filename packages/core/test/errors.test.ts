import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import * as esm from '@quiesce/core'

const require = createRequire(import.meta.url)
const cjs = require('@quiesce/core') as typeof esm

describe('errors', () => {
  it('carry stable ERR_QUIESCE_* codes and names', () => {
    const e = new esm.ClientClosedError()
    expect(e.code).toBe('ERR_QUIESCE_CLIENT_CLOSED')
    expect(e.name).toBe('ClientClosedError')
    expect(new esm.ShutdownDeadlineError(10).code).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    const r = new esm.ResumeError('127.0.0.1:80', Object.assign(new Error('in use'), { code: 'EADDRINUSE' }))
    expect(r.message).toMatch(/127\.0\.0\.1:80/)
    expect((r.cause as { code: string }).code).toBe('EADDRINUSE')
  })

  it('instanceof survives the ESM and the CommonJS copy of the package (Symbol.for brand)', () => {
    expect(esm.QuiesceError).not.toBe(cjs.QuiesceError)
    const fromCjs = new cjs.ClientClosedError()
    expect(fromCjs).toBeInstanceOf(esm.QuiesceError)
    expect(fromCjs).toBeInstanceOf(esm.ClientClosedError)
    expect(fromCjs).not.toBeInstanceOf(esm.ShutdownDeadlineError)
    expect(new esm.ShutdownDeadlineError(1)).toBeInstanceOf(cjs.ShutdownDeadlineError)
  })

  it('option errors are real TypeErrors and quiesce errors at once', () => {
    const e = new esm.QuiesceOptionError('timeout', 'a number', 'x')
    expect(e).toBeInstanceOf(TypeError)
    expect(e).toBeInstanceOf(esm.QuiesceError)
    expect(e).toBeInstanceOf(cjs.QuiesceError)
    expect(e.option).toBe('timeout')
    expect(e.code).toBe('ERR_QUIESCE_INVALID_OPTION')
  })

  it('graceful() rejects what is not an http, https or http2 server', () => {
    expect(() => esm.graceful({} as never)).toThrow(/`server` must be an http, https or http2 server/)
    expect(() => esm.graceful(undefined as never)).toThrow(TypeError)
  })
})

describe('errors (revision 3)', () => {
  it('D14.3 instanceof QuiesceOptionError holds across the ESM and CommonJS copies', () => {
    const fromCjs = new cjs.QuiesceOptionError('timeout', 'a number', 'x')
    expect(fromCjs).toBeInstanceOf(esm.QuiesceOptionError)
    expect(new esm.QuiesceOptionError('a', 'b', 1)).toBeInstanceOf(cjs.QuiesceOptionError)
    expect(new esm.ClientClosedError()).not.toBeInstanceOf(esm.QuiesceOptionError)
    expect(new TypeError('x')).not.toBeInstanceOf(esm.QuiesceOptionError)
  })

  it('D14.4 a missing value is named as such ("received undefined"), not "undefined undefined"', () => {
    expect(new esm.QuiesceOptionError('logger.info', 'a function', undefined).message).toMatch(/received undefined$/)
    expect(() => esm.graceful({} as never)).toThrow(/received an object/)
  })
})
