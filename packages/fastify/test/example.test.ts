import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../../../test/helpers/child.js'
import { get } from './helpers.js'

const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'fastify', 'server.mjs')

describe('examples/fastify/server.mjs (a real process, a real signal)', () => {
  it("D9.1 SIGTERM during a long-poll: the poll is answered, Fastify's onClose hook runs, the report is logged through fastify.log, exit 0", async () => {
    await using child = new Child(example, { PORT: '0', HOST: '127.0.0.1' })
    const port = Number((await child.says('listening on')).split(' ').at(-1))
    const poll = get(port, '/poll')
    // the poll is in flight once the server has it: the example answers hello on / meanwhile
    expect((await get(port, '/')).body).toBe('hello\n')
    child.kill('SIGTERM')
    const answered = await poll
    expect(answered.status).toBe(200)
    expect(answered.headers.connection).toBe('close')
    const exit = await child.exited
    expect(exit.code).toBe(0)
    const messages = exit.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg)
    const drained = messages.findIndex((m) => /^quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed/.test(m))
    expect(drained).toBeGreaterThan(-1)
    expect(messages.indexOf('closing the database pool…')).toBeGreaterThan(-1)
    expect(messages.indexOf('closing the database pool…')).toBeLessThan(drained)
    expect(messages.filter((m) => m.startsWith('quiesce: shutdown'))).toHaveLength(1)
  })
})
