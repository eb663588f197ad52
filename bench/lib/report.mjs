// Small helpers to print tables to the terminal and to Markdown, and to find optional packages.
import os from 'node:os'

/** A Markdown table (also readable in a terminal). */
export function table(head, rows) {
  const widths = head.map((h, i) => Math.max(String(h).length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

export function machine() {
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU'
  return `Node ${process.version}, ${os.cpus().length} cores (${cpu}), ${os.platform()} ${os.release()}`
}

/** The Fastify adapter, if built and complete: its module specifier, or null with the reason. */
export async function findFastifyAdapter() {
  try {
    const mod = await import('@quiesce/fastify')
    if (typeof mod.gracefulPlugin !== 'function') return { spec: null, why: '@quiesce/fastify has no gracefulPlugin export yet' }
    return { spec: '@quiesce/fastify', why: null }
  } catch (err) {
    return { spec: null, why: `@quiesce/fastify is not built (${err.code ?? err.message})` }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
