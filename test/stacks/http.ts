/** One request on its own connection (no agent), the whole body read: the shared test helper. */
export { request } from '../helpers/http.js'
