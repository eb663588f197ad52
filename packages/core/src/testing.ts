/**
 * @quiesce/core/testing — start and stop servers instantly in tests (placeholder).
 * @module
 */
export {}
