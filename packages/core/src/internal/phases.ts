import type { State } from '../types.js'

/**
 * The drain's state machine: every phase and every allowed step, in one table — the contract's
 * "drain at a glance". The public `state` is a coarser view of it.
 */
export type Phase =
  /** serving */
  | 'running'
  /** `pause()`: no new work, open connections keep working (D13) */
  | 'paused'
  /** draining started: markers, readiness 503, first GOAWAY; the listener still open (D4) */
  | 'announcing'
  /** the listener closed: idle and header graces, lingers; waiting for the server's `close` (D1, D5, D7) */
  | 'closing'
  /** the deadline (or a second signal): what was left is destroyed (D6) */
  | 'forced'
  /** every server closed: the cleanup hooks run (D8) */
  | 'hooks'
  /** the report is out */
  | 'closed'

const STEPS: Readonly<Record<Phase, readonly Phase[]>> = {
  running: ['paused', 'announcing'],
  paused: ['running', 'announcing'],
  announcing: ['closing', 'forced'],
  closing: ['forced', 'hooks'],
  forced: ['hooks'],
  hooks: ['closed'],
  closed: [],
}

const PUBLIC_STATE: Readonly<Record<Phase, State>> = {
  running: 'running',
  paused: 'paused',
  announcing: 'draining',
  closing: 'draining',
  forced: 'draining',
  hooks: 'draining',
  closed: 'closed',
}

export class PhaseMachine {
  #phase: Phase = 'running'

  get phase(): Phase {
    return this.#phase
  }

  get state(): State {
    return PUBLIC_STATE[this.#phase]
  }

  /** Draining has started (the announce phase included). */
  get draining(): boolean {
    return this.#phase !== 'running' && this.#phase !== 'paused'
  }

  can(next: Phase): boolean {
    return STEPS[this.#phase].includes(next)
  }

  /** Takes the step if the table allows it; false (nothing changes) if not. */
  to(next: Phase): boolean {
    if (!this.can(next)) return false
    this.#phase = next
    return true
  }
}
