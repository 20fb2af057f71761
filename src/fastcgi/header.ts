// The 8-byte FCGI_Header (FastCGI spec §3.3): read and write it at an offset in a byte array.
// No validation of the version here: the record parser decides what it accepts.

import { FCGI_VERSION_1 } from './constants.ts'

/** A decoded header. The parser reuses one of these per connection, so it is mutable. */
export interface RecordHeader {
  version: number
  type: number
  requestId: number
  contentLength: number
  paddingLength: number
}

/** Padding that brings `len` to a multiple of 8 (spec §3.3 recommends 8-byte aligned records). */
export function paddingFor (len: number): number {
  return (-len) & 7
}

/**
 * Reads the header at `buf[offset..offset+8)` into `into` (a fresh object when omitted) and returns it.
 * The caller guarantees 8 readable bytes.
 */
export function readHeader (buf: Uint8Array, offset: number, into: RecordHeader = newHeader()): RecordHeader {
  into.version = buf[offset]!
  into.type = buf[offset + 1]!
  into.requestId = (buf[offset + 2]! << 8) | buf[offset + 3]!
  into.contentLength = (buf[offset + 4]! << 8) | buf[offset + 5]!
  into.paddingLength = buf[offset + 6]!
  // buf[offset + 7] is `reserved`: ignored on input
  return into
}

/**
 * Writes a version-1 header at `buf[offset]` and returns `offset + 8`. Every byte is written (reserved
 * is zeroed), so `buf` may come from `Buffer.allocUnsafe`.
 */
export function writeHeader (
  buf: Uint8Array, offset: number, type: number, requestId: number, contentLength: number, paddingLength: number
): number {
  // Programmer errors, not peer errors: a wrong value here would silently corrupt the stream.
  if ((requestId & 0xffff) !== requestId || (contentLength & 0xffff) !== contentLength ||
      (type & 0xff) !== type || (paddingLength & 0xff) !== paddingLength) {
    throw new RangeError(`invalid FastCGI header field (type ${type}, requestId ${requestId}, ` +
      `contentLength ${contentLength}, paddingLength ${paddingLength})`)
  }
  buf[offset] = FCGI_VERSION_1
  buf[offset + 1] = type
  buf[offset + 2] = requestId >>> 8
  buf[offset + 3] = requestId & 0xff
  buf[offset + 4] = contentLength >>> 8
  buf[offset + 5] = contentLength & 0xff
  buf[offset + 6] = paddingLength
  buf[offset + 7] = 0
  return offset + 8
}

function newHeader (): RecordHeader {
  return { version: 0, type: 0, requestId: 0, contentLength: 0, paddingLength: 0 }
}
