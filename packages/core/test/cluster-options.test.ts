import { describe, expect, it } from 'vitest'
import { gracefulCluster } from '@quiesce/core/cluster'

describe('gracefulCluster() bad input (D14), refused before any worker is forked', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ killTimeout: 3e9 }, /`killTimeout` must be a number of milliseconds from 1 to 2147483647/],
    [{ startTimeout: 2 ** 31 }, /`startTimeout`/],
    [{ signals: ['SIGTRM'] }, /`signals` must be a signal name this platform has.*received "SIGTRM"/],
    [{ restartSignal: 'SIGHUPP' }, /`restartSignal` .*received "SIGHUPP"/],
    [{ signals: ['SIGSEGV'] }, /`signals` must be a signal that is safe to handle/],
    [{ restartSignal: 'SIGKILL' }, /`restartSignal` must be a catchable signal/],
    [{ workers: 0 }, /`workers`/],
    [{ logger: { info() {} } }, /`logger.warn`/],
  ]
  for (const [options, message] of bad) {
    it(`D14.5 ${JSON.stringify(options)}`, () => {
      expect(() => gracefulCluster(options as never)).toThrow(TypeError)
      expect(() => gracefulCluster(options as never)).toThrow(message)
    })
  }
})
