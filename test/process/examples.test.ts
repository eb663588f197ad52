import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Child } from '../helpers/child.js'
import { get } from '../helpers/http.js'

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples')

describe('examples keep working (README examples cannot rot)', () => {
  it('the demo drains and exits 0', async () => {
    await using child = new Child(path.join(examples, 'demo', 'demo.mjs'))
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toContain('listener closed')
    expect(exit.stdout).toMatch(/slow request finished: 200, Connection: close/)
    expect(exit.stdout).toMatch(/quiesce: shutdown \(manual\) drained/)
  })

  // nestjs and socket.io have their own package.json (their dependencies are not the root's)
  for (const name of ['node', 'express', 'koa', 'fastify', 'nestjs', 'socket.io']) {
    it(`examples/${name}: SIGTERM during a long-poll answers it and exits 0`, async () => {
      await using child = new Child(path.join(examples, name, 'server.mjs'), { PORT: '0' })
      const port = Number((await child.says('listening on')).split(' ').at(-1))
      const poll = get(port, '/poll')
      // the poll is in flight once the server has it: the example answers hello on / meanwhile
      expect((await get(port, '/')).status).toBe(200)
      // socket.io took over the server's 'request' listeners: its own routes and the app's both answer
      if (name === 'socket.io') expect((await get(port, '/socket.io/?EIO=4&transport=polling')).body).toMatch(/^0\{"sid":/)
      child.kill('SIGTERM')
      const r = await poll
      expect([200, 503]).toContain(r.status)
      const exit = await child.exited
      expect(exit.code).toBe(0)
      expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained/)
    })
  }
})
