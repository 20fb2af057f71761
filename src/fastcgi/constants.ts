// FastCGI wire constants (FastCGI spec 1.0, §8 "Types and Constants").
// Plain `as const` objects instead of enums: Node strips types only (erasable syntax).

/** The only protocol version (spec §3.3, `FCGI_VERSION_1`). */
export const FCGI_VERSION_1 = 1

/** Record types (spec §8). */
export const RecordType = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11
} as const
export type RecordType = typeof RecordType[keyof typeof RecordType]

/** Roles in FCGI_BeginRequestBody (spec §5.1). */
export const Role = {
  RESPONDER: 1,
  AUTHORIZER: 2,
  FILTER: 3
} as const
export type Role = typeof Role[keyof typeof Role]

/** protocolStatus in FCGI_EndRequestBody (spec §5.5). */
export const ProtocolStatus = {
  REQUEST_COMPLETE: 0,
  CANT_MPX_CONN: 1,
  OVERLOADED: 2,
  UNKNOWN_ROLE: 3
} as const
export type ProtocolStatus = typeof ProtocolStatus[keyof typeof ProtocolStatus]

/** FCGI_BeginRequestBody flag (spec §5.1): keep the connection open after END_REQUEST. */
export const FCGI_KEEP_CONN = 1

/** Fixed size of FCGI_Header (spec §3.3). */
export const HEADER_LEN = 8

/** contentLength is a 16-bit field (spec §3.3). */
export const MAX_CONTENT_LEN = 65535

/**
 * Content length of the full records we emit when splitting a stream: 0xFFF8 is the largest multiple
 * of 8 that fits, so full records need no padding (php-fpm's fcgi_write uses the same size).
 */
export const STREAM_RECORD_LEN = 65528

/** Request id of management records (spec §3.3: GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE). */
export const NULL_REQUEST_ID = 0
