import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import projects from './vitest.workspace.js'

/**
 * Coverage of @quiesce/core (`npm run test:coverage`). The core's tests import '@quiesce/core',
 * which resolves to the built dist/; here it resolves to packages/core/src instead, so that V8
 * coverage is measured on the TypeScript sources the tests actually run (no source-map guessing
 * through bundled chunks).
 */
const src = (file: string) => fileURLToPath(new URL(`./packages/core/src/${file}`, import.meta.url))
const alias = [
  { find: /^@quiesce\/core\/cluster$/, replacement: src('cluster.ts') },
  { find: /^@quiesce\/core\/testing$/, replacement: src('testing.ts') },
  { find: /^@quiesce\/core$/, replacement: src('index.ts') },
]

export default defineConfig({
  test: {
    projects: projects.map((p) => ({ ...p, resolve: { alias } })),
    passWithNoTests: false,
    coverage: {
      provider: 'v8',
      include: ['packages/core/src/**/*.ts'],
      exclude: ['packages/core/src/types.ts'],
      reporter: ['text', 'json-summary', 'json'],
      reportsDirectory: 'coverage/core',
    },
  },
})
