/**
 * @quiesce/core/cluster — rolling restarts under node:cluster (placeholder, filled by the cluster work).
 * @module
 */
export {}
