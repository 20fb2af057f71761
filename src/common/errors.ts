// Errors with a stable string `code`. Match on `code`, never on `instanceof`: errors that cross
// worker_threads arrive as structured clones and lose their class (see STYLE.md §5.3).

export type FpmErrorCode =
  // configuration
  | 'FPM_ERR_CONFIG'
  | 'FPM_ERR_CONFIG_SYNTAX'
  | 'FPM_ERR_CONFIG_UNKNOWN_DIRECTIVE'
  | 'FPM_ERR_CONFIG_VALUE'
  | 'FPM_ERR_CONFIG_POOL'
  | 'FPM_ERR_CONFIG_INCLUDE'
  // FastCGI protocol (a peer sent something we cannot accept: the connection is closed)
  | 'FPM_ERR_PROTOCOL_VERSION'
  | 'FPM_ERR_PROTOCOL_RECORD'
  | 'FPM_ERR_PROTOCOL_PARAMS'
  | 'FPM_ERR_PROTOCOL_SEQUENCE'
  | 'FPM_ERR_PROTOCOL_LIMIT'
  // listeners
  | 'FPM_ERR_LISTEN_ADDRESS'
  | 'FPM_ERR_LISTEN_BIND'
  // requests and pools
  | 'FPM_ERR_SCRIPT_NOT_FOUND'
  | 'FPM_ERR_SCRIPT_DENIED'
  | 'FPM_ERR_HANDLER_INVALID'
  | 'FPM_ERR_HANDLER_THREW'
  | 'FPM_ERR_WORKER_DIED'
  | 'FPM_ERR_REQUEST_ABORTED'
  /** The request ran longer than request_terminate_timeout (504; its thread may have been terminated). */
  | 'FPM_ERR_REQUEST_TIMEOUT'
  | 'FPM_ERR_BODY_TOO_LARGE'
  /** The web server sent no request body bytes for request.body_timeout while the body was incomplete (408). */
  | 'FPM_ERR_BODY_TIMEOUT'
  | 'FPM_ERR_POOL_CLOSED'
  /** request.queue_max requests were already waiting for a thread (503). */
  | 'FPM_ERR_QUEUE_FULL'
  /** The request waited request.queue_timeout for a thread (503). */
  | 'FPM_ERR_QUEUE_TIMEOUT'
  // log files
  /** A log file (error_log, access.log) cannot be opened or reopened. */
  | 'FPM_ERR_LOG_OPEN'
  /** Lines could not be written to a log file (they are lost; the server keeps serving). */
  | 'FPM_ERR_LOG_WRITE'
  // the built-in client
  | 'FPM_ERR_CLIENT'

export class FpmError extends Error {
  readonly code: FpmErrorCode

  constructor (code: FpmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FpmError'
    this.code = code
  }
}

/** A location in a configuration file, as php-fpm prints it: `[file:line]`. */
export interface ConfigLocation {
  readonly file: string
  readonly line: number
}

export class ConfigError extends FpmError {
  readonly location: ConfigLocation | null
  readonly pool: string | null

  constructor (code: FpmErrorCode, message: string, where: { location?: ConfigLocation | null, pool?: string | null } = {}) {
    super(code, message)
    this.name = 'ConfigError'
    this.location = where.location ?? null
    this.pool = where.pool ?? null
  }
}

/** A peer broke the FastCGI protocol. Thrown by the pure codec; the connection catches it and closes. */
export class ProtocolError extends FpmError {
  constructor (code: FpmErrorCode, message: string) {
    super(code, message)
    this.name = 'ProtocolError'
  }
}

export function isFpmError (value: unknown): value is { code: FpmErrorCode, message: string } {
  return typeof value === 'object' && value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    (value as { code: string }).code.startsWith('FPM_ERR_')
}
