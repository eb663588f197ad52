import type { TestProjectInlineConfiguration } from 'vitest/config'

/**
 * The test projects. vitest ≥ 4 ignores a bare workspace file, so `vitest.config.ts` imports
 * this list as `test.projects`; `scripts/check-vitest.mjs` fails CI if any project ran no test.
 */
const shared = { testTimeout: 20_000, hookTimeout: 20_000, pool: 'forks' as const }

export default [
  { test: { ...shared, name: 'core', include: ['packages/core/test/**/*.test.ts'] } },
  { test: { ...shared, name: 'express', include: ['packages/express/test/**/*.test.ts'] } },
  { test: { ...shared, name: 'koa', include: ['packages/koa/test/**/*.test.ts'] } },
  { test: { ...shared, name: 'fastify', include: ['packages/fastify/test/**/*.test.ts'] } },
  { test: { ...shared, name: 'conformance', include: ['test/conformance/**/*.test.ts'] } },
  { test: { ...shared, name: 'process', include: ['test/process/**/*.test.ts'] } },
  { test: { ...shared, name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 120_000 } },
  // one file at a time: the properties measure drains and CPU, and share 2 cores with everything else
  { test: { ...shared, name: 'adversarial', include: ['test/adversarial/**/*.test.ts'], testTimeout: 60_000, fileParallelism: false } },
  { test: { ...shared, name: 'proxies', include: ['test/proxies/**/*.test.ts'], testTimeout: 180_000 } },
  { test: { ...shared, name: 'stacks', include: ['test/stacks/**/*.test.ts'], testTimeout: 60_000 } },
  // type tests (expectTypeOf, checked by tsc, never run) of the public types and declaration
  // merges, against the built declarations as a user gets them: `npm run build` first
  {
    test: {
      name: 'types',
      include: ['test/types/**/*.test-d.ts'],
      typecheck: { enabled: true, only: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './test/types/tsconfig.json', ignoreSourceErrors: false },
    },
  },
] satisfies TestProjectInlineConfiguration[]
