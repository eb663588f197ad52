import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts', 'src/cluster.ts', 'src/testing.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // the subpath entries (cluster, testing) share the core's modules through chunks, in both formats,
  // so `instanceof` and module state are one, not a copy per entry
  splitting: true,
})
