// Fixed-layout record bodies (FastCGI spec §5.1 BEGIN_REQUEST, §5.4 ABORT_REQUEST, §5.5 END_REQUEST,
// §4.1 GET_VALUES / GET_VALUES_RESULT, §4.2 UNKNOWN_TYPE): parse the ones we receive, build whole
// records (header included) for the ones we send. Every builder writes every byte, padding included.

import { Buffer } from 'node:buffer'
import { ProtocolError } from '../common/errors.ts'
import { HEADER_LEN, MAX_CONTENT_LEN, NULL_REQUEST_ID, RecordType } from './constants.ts'
import { paddingFor, writeHeader } from './header.ts'
import { encodeParams } from './params.ts'
import type { ParamPairs } from './params.ts'

/** Size of a whole BEGIN_REQUEST / END_REQUEST / UNKNOWN_TYPE record: header + 8-byte body. */
export const FIXED_RECORD_LEN = 16

/** FCGI_BeginRequestBody (spec §5.1): role (16 bits), flags, 5 reserved bytes. */
export function parseBeginRequest (content: Uint8Array): { role: number, flags: number } {
  if (content.length !== 8) {
    throw new ProtocolError('FPM_ERR_PROTOCOL_RECORD', `BEGIN_REQUEST body must be 8 bytes, got ${content.length}`)
  }
  return { role: (content[0]! << 8) | content[1]!, flags: content[2]! }
}

export function buildBeginRequest (requestId: number, role: number, flags: number): Buffer {
  const buf = Buffer.alloc(FIXED_RECORD_LEN)
  writeHeader(buf, 0, RecordType.BEGIN_REQUEST, requestId, 8, 0)
  buf.writeUInt16BE(role, 8)
  buf[10] = flags
  return buf
}

/** ABORT_REQUEST has no body (spec §5.4). */
export function buildAbortRequest (requestId: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN)
  writeHeader(buf, 0, RecordType.ABORT_REQUEST, requestId, 0, 0)
  return buf
}

/** FCGI_EndRequestBody (spec §5.5): appStatus (32 bits), protocolStatus, 3 reserved bytes. */
export function parseEndRequest (content: Uint8Array): { appStatus: number, protocolStatus: number } {
  if (content.length !== 8) {
    throw new ProtocolError('FPM_ERR_PROTOCOL_RECORD', `END_REQUEST body must be 8 bytes, got ${content.length}`)
  }
  const appStatus = ((content[0]! << 24) | (content[1]! << 16) | (content[2]! << 8) | content[3]!) >>> 0
  return { appStatus, protocolStatus: content[4]! }
}

export function buildEndRequest (requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const buf = Buffer.allocUnsafe(FIXED_RECORD_LEN)
  writeEndRequest(buf, 0, requestId, appStatus, protocolStatus)
  return buf
}

/**
 * Writes a 16-byte END_REQUEST record at `buf[offset]` (to coalesce it with the last STDOUT) and returns
 * the new offset. `appStatus` is taken modulo 2^32, so an exit status of -1 becomes 0xFFFFFFFF.
 */
export function writeEndRequest (
  buf: Uint8Array, offset: number, requestId: number, appStatus: number, protocolStatus: number
): number {
  writeHeader(buf, offset, RecordType.END_REQUEST, requestId, 8, 0)
  const s = appStatus >>> 0
  buf[offset + 8] = s >>> 24
  buf[offset + 9] = (s >>> 16) & 0xff
  buf[offset + 10] = (s >>> 8) & 0xff
  buf[offset + 11] = s & 0xff
  buf[offset + 12] = protocolStatus
  buf[offset + 13] = 0
  buf[offset + 14] = 0
  buf[offset + 15] = 0
  return offset + FIXED_RECORD_LEN
}

/** Reply to a record type we do not know (spec §4.2): FCGI_UnknownTypeBody, request id 0. */
export function buildUnknownType (type: number): Buffer {
  const buf = Buffer.alloc(FIXED_RECORD_LEN)
  writeHeader(buf, 0, RecordType.UNKNOWN_TYPE, NULL_REQUEST_ID, 8, 0)
  buf[8] = type
  return buf
}

/** Management query (spec §4.1): the names with empty values, request id 0. Client side. */
export function buildGetValues (names: Iterable<string>): Buffer {
  const flat: string[] = []
  for (const name of names) flat.push(name, '')
  return buildParamsRecord(RecordType.GET_VALUES, flat)
}

/** Management reply (spec §4.1), request id 0, e.g. `[['FCGI_MPXS_CONNS', '0']]`. */
export function buildGetValuesResult (pairs: ParamPairs): Buffer {
  return buildParamsRecord(RecordType.GET_VALUES_RESULT, pairs)
}

// A management record is a single record: the spec gives no way to continue it, so it must fit in one.
function buildParamsRecord (type: number, pairs: ParamPairs): Buffer {
  const body = encodeParams(pairs)
  if (body.length > MAX_CONTENT_LEN) {
    throw new RangeError(`management record body of ${body.length} bytes exceeds ${MAX_CONTENT_LEN}`)
  }
  const pad = paddingFor(body.length)
  const buf = Buffer.alloc(HEADER_LEN + body.length + pad)
  writeHeader(buf, 0, type, NULL_REQUEST_ID, body.length, pad)
  body.copy(buf, HEADER_LEN)
  return buf
}
