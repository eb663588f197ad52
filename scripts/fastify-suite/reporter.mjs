// node:test reporter (--test-reporter): one JSON line per finished test — file, name path,
// status, and for a failure the assertion's message and line — and one per process warning a
// test file printed. run.mjs reads these lines; the human output is run.mjs's.
const names = []

function describeFailure(error, file) {
  if (!error) return undefined
  const cause = error.cause ?? error
  const asText = (v) => (v instanceof Error ? v.message : typeof v === 'string' ? v : undefined)
  // the failing line of the test file: the first stack frame that is in it
  const frame = typeof cause.stack === 'string' && file ? cause.stack.split('\n').find((l) => l.includes(`${file}:`)) : undefined
  const line = frame ? Number(frame.slice(frame.lastIndexOf(`${file}:`) + file.length + 1).split(':')[0]) : undefined
  // an AggregateError (refused on both ::1 and 127.0.0.1) has no message of its own
  const message = asText(cause) || (Array.isArray(cause.errors) ? cause.errors.map(asText).join('; ') : '') || String(cause)
  return { failureType: error.failureType, code: cause.code, message: String(message).slice(0, 600), line }
}

function statusOf(type, data) {
  if (data.skip !== undefined && data.skip !== false) return 'skip'
  if (data.todo !== undefined && data.todo !== false) return 'todo'
  return type === 'test:pass' ? 'pass' : 'fail'
}

export default async function* reporter(source) {
  for await (const { type, data } of source) {
    if (type === 'test:start') {
      names.length = data.nesting
      names[data.nesting] = data.name
    } else if (type === 'test:stderr' && /\b\w*Warning\b/.test(data.message)) {
      for (const m of data.message.matchAll(/\(node:\d+\) (?:\[[^\]]*\] )?(\w*Warning): ([^\n]{0,160})/g)) {
        yield `${JSON.stringify({ file: data.file, warning: m[1], text: m[2] })}\n`
      }
    } else if (type === 'test:pass' || type === 'test:fail') {
      const details = data.details ?? {}
      yield `${JSON.stringify({
        file: data.file,
        path: [...names.slice(0, data.nesting), data.name],
        status: statusOf(type, data),
        suite: details.type === 'suite',
        ms: Math.round(details.duration_ms ?? 0),
        failure: type === 'test:fail' ? describeFailure(details.error, data.file) : undefined,
      })}\n`
    }
  }
}
