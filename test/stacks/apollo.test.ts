import { describe, expect, it } from 'vitest'
import { drain, once } from './drain.js'

// a GraphQL query over GET (Apollo's CSRF prevention wants the preflight header on it)
const slow = { path: '/graphql?query=%7Bslow%7D', headers: 'Apollo-Require-Preflight: true\r\n' }
// Apollo installs its signal handlers only outside NODE_ENV=test (vitest sets it)
const production = { NODE_ENV: 'production' }

describe('Apollo Server 5 + Express integration', () => {
  for (const plugin of [false, true]) {
    it(`the README recipe (stopOnTerminationSignals: false, g.onShutdown(() => apollo.stop()))${plugin ? ' with ApolloServerPluginDrainHttpServer' : ''}: the operation in flight completes, Apollo stops once, after it; exit 0`, async () => {
      const { marks, exit, slow: r } = await drain('apollo.mjs', { slow, env: { ...production, ...(plugin ? { DRAIN_PLUGIN: '1' } : {}) } })
      expect(JSON.parse(r.body)).toEqual({ data: { slow: 'slow done' } })
      const finished = once(marks, 'slow:finished')
      expect(once(marks, 'quiesce:draining')).toBeLessThan(finished)
      expect(once(marks, 'apollo:drainServer')).toBeGreaterThan(finished)
      expect(once(marks, 'apollo:serverWillStop')).toBeGreaterThan(finished)
      expect(exit.stdout).toMatch(
        /quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed, 0 aborted, 0 rejected — 1 idle socket closed, 0 forced — hooks: apollo ok/,
      )
    })
  }

  it("Apollo's default (stopOnTerminationSignals on) with ApolloServerPluginDrainHttpServer: both drain at the signal; Apollo's re-sent SIGTERM comes after the server closed; exit 0", async () => {
    const { marks, exit } = await drain('apollo.mjs', { slow, env: { ...production, APOLLO_SIGNALS: '1', DRAIN_PLUGIN: '1' } })
    // Apollo's drain started at the signal, beside quiesce's (its plugin ends idle sockets at once)
    expect(once(marks, 'apollo:drainServer')).toBeLessThan(once(marks, 'slow:finished'))
    once(marks, 'apollo:serverWillStop')
    expect(exit.stdout).not.toContain('again — forcing')
  })

  it('Apollo\'s default (stopOnTerminationSignals on) without the drain plugin: Apollo stops at once and re-sends SIGTERM while the operation is in flight; that is not a "force now" signal: the operation completes, exit 0 (D20)', async () => {
    const { marks, exit, slow: r } = await drain('apollo.mjs', { slow, env: { ...production, APOLLO_SIGNALS: '1' } })
    expect(JSON.parse(r.body)).toEqual({ data: { slow: 'slow done' } })
    // Apollo stopped while the operation ran: why the recipe turns its signal handling off
    expect(once(marks, 'apollo:serverWillStop')).toBeLessThan(once(marks, 'slow:finished'))
    expect(exit.stdout).not.toContain('again — forcing')
    expect(exit.stdout).toContain('quiesce: SIGTERM again, re-sent by the handler that took the first one; the drain goes on')
    expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGTERM\) drained .* 1 request completed, 0 aborted/)
  })
})
