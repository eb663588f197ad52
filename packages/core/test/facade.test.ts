import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { graceful } from '@quiesce/core'

describe('the public controller', () => {
  it('exposes exactly its documented members, and nothing internal (start, force, admit, trackerOf…)', async () => {
    const g = graceful(http.createServer(), { signals: false, logger: false })
    expect(Object.keys(g).sort()).toEqual([
      'attach',
      'beforeShutdown',
      'draining',
      'liveness',
      'onShutdown',
      'pause',
      'readiness',
      'ready',
      'resume',
      'servers',
      'shutdown',
      'state',
      'stats',
    ])
    for (const internal of ['start', 'force', 'admit', 'trackerOf', 'count', 'forced', 'options', 'limits']) expect(internal in g).toBe(false)
    expect(g.attach(g.servers[0] as http.Server)).toBe(g)
    await g.shutdown()
  })
})
