// Connection-level limits the server enforces, and therefore what it answers to FCGI_GET_VALUES
// (FastCGI spec §4.1: the values must be the ones the application really applies).

/** Concurrent connections per listener (net.Server#maxConnections): FCGI_MAX_CONNS. */
export const MAX_CONNECTIONS = 4096
/** Concurrent requests multiplexed on one connection; more get END_REQUEST(FCGI_OVERLOADED). */
export const MAX_REQUESTS_PER_CONNECTION = 256
/** FCGI_MAX_REQS: every connection may carry its full share at once. */
export const MAX_REQUESTS = MAX_CONNECTIONS * MAX_REQUESTS_PER_CONNECTION
/** Streamed request body bytes buffered per connection before the socket stops being read. */
export const BODY_QUEUE_HIGH_WATER_BYTES = 1024 * 1024
/** Without FCGI_KEEP_CONN we end() the socket after END_REQUEST; a peer that never closes is destroyed after this. */
export const CLOSE_LINGER_MS = 5000
/** Stopping gracefully (Listener.closeConnections): how long a peer has to close after what was queued is written. */
export const DROP_LINGER_MS = 1000
