import { defineConfig } from 'tsup'

/** One build for every package: ESM + CommonJS with their own declarations (.d.ts / .d.cts), Node 20. */
export function packageBuild(entry: string[]) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    // several entries share the core's modules through chunks, in both formats, so that
    // `instanceof` and module state are one, not a copy per entry
    splitting: true,
  })
}
