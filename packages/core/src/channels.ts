import diagnostics from 'node:diagnostics_channel'

/**
 * `node:diagnostics_channel` channels (D18). Publishing costs nothing when nobody subscribes.
 *
 * - `quiesce:drain:start`    `{ controller, reason, signal?, timeout }`
 * - `quiesce:drain:progress` `{ controller, requestsInFlight, connections, remainingMs }` (about once a second)
 * - `quiesce:listener:close` `{ controller, server }`
 * - `quiesce:forced`         `{ controller, item }` (one per forced request, socket, session or hook)
 * - `quiesce:drain:end`      `{ controller, report }`
 */
export const channels = {
  drainStart: diagnostics.channel('quiesce:drain:start'),
  drainProgress: diagnostics.channel('quiesce:drain:progress'),
  listenerClose: diagnostics.channel('quiesce:listener:close'),
  forced: diagnostics.channel('quiesce:forced'),
  drainEnd: diagnostics.channel('quiesce:drain:end'),
} as const

export function publish(channel: diagnostics.Channel, message: () => object): void {
  if (channel.hasSubscribers) channel.publish(message())
}
