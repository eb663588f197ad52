import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { cases } from './cases.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** Every test file whose titles carry contract ids (the stacks and proxies suites cite several per title). */
function testFiles(): string[] {
  const dirs = ['test/process', 'test/integration', ...fs.readdirSync(path.join(root, 'packages')).map((p) => `packages/${p}/test`)]
  return dirs.flatMap((d) => {
    const dir = path.join(root, d)
    if (!fs.existsSync(dir)) return []
    return fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => path.join(d, f))
  })
}

describe('contract ids', () => {
  it('every conformance case has its own sub-id (D2.1, D2.2, …)', () => {
    const ids = cases.map((c) => c.id)
    const repeated = ids.filter((id, i) => ids.indexOf(id) !== i)
    expect(repeated).toEqual([])
    for (const id of ids) expect(id).toMatch(/^(D\d+\.\d+|close)$/)
  })

  it('no test title outside the conformance suite reuses a sub-id, or a conformance one', () => {
    const seen = new Map<string, string>(cases.map((c) => [c.id, 'test/conformance/cases.ts']))
    const repeated: string[] = []
    for (const file of testFiles()) {
      const source = fs.readFileSync(path.join(root, file), 'utf8')
      for (const m of source.matchAll(/\b(?:it|test)(?:\.\w+)*\(\s*['"`](D\d+\.\d+) /g)) {
        const before = seen.get(m[1])
        if (before) repeated.push(`${m[1]} in ${before} and ${file}`)
        else seen.set(m[1], file)
      }
    }
    expect(repeated).toEqual([])
  })

  it("the README's contract table names every conformance sub-id in its promise's row", () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
    const missing = cases
      .filter((c) => c.id !== 'close')
      .filter((c) => {
        const [promise, sub] = c.id.slice(1).split('.').map(Number)
        const row = new RegExp(`^\\| \\*\\*D${promise}\\*\\* \\|.*\\| ([^|]*) \\|$`, 'm').exec(readme)?.[1] ?? ''
        return ![...row.matchAll(/D(\d+)\.(\d+)(?:–D\d+\.(\d+))?/g)].some(
          (m) => Number(m[1]) === promise && Number(m[2]) <= sub! && sub! <= Number(m[3] ?? m[2]),
        )
      })
    expect(missing.map((c) => c.id)).toEqual([])
  })
})
