import { describe, it } from 'vitest'
import { cases } from './cases.js'
import { targets } from './targets.js'

describe.each(targets)('$name', (target) => {
  for (const c of cases) it(`${c.id} ${c.title}`, () => c.run(target))
})
