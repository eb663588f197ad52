import { defineConfig } from 'vitest/config'
import projects from './vitest.workspace.js'

export default defineConfig({
  test: {
    projects,
    // a run that collects nothing is a failure, not a pass
    passWithNoTests: false,
  },
})
