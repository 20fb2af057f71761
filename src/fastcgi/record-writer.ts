// Stream framing (FastCGI spec §3.3 records, §5.3 byte streams): split STDOUT/STDERR (or STDIN, client
// side) data into records of at most STREAM_RECORD_LEN bytes, padded to a multiple of 8.
// Two shapes, after php-fpm's fcgi_write/fcgi_flush and Go's streamWriter:
// - small data is copied into one preallocated buffer (frameInto, frameResponse): one socket write;
// - large data stays where it is (frameChunks): record headers plus views of the caller's bytes, for a
//   corked writev, so a 1 MiB body is never copied.
// We never emit a zero-length stream record except as the final terminator (buildStreamEnd,
// frameResponse): nginx reads an empty STDOUT as end of stream (php bug #72185).

import { Buffer } from 'node:buffer'
import { HEADER_LEN, RecordType, STREAM_RECORD_LEN } from './constants.ts'
import { paddingFor, writeHeader } from './header.ts'
import { FIXED_RECORD_LEN, writeEndRequest } from './records.ts'

// Shared zero padding for frameChunks (Go's `pad`): one view per possible length, made once.
// Our full records need no padding, so at most 7 bytes are ever needed.
const ZEROES = new Uint8Array(8)
const PAD_VIEWS: readonly Uint8Array[] = [0, 1, 2, 3, 4, 5, 6, 7].map((n) => ZEROES.subarray(0, n))

/** Exact number of bytes `frameInto` writes for `dataLength` bytes of data (0 for none). */
export function framedLength (dataLength: number): number {
  const full = Math.floor(dataLength / STREAM_RECORD_LEN)
  const rest = dataLength - full * STREAM_RECORD_LEN
  return dataLength + full * HEADER_LEN + (rest === 0 ? 0 : HEADER_LEN + paddingFor(rest))
}

/**
 * Frames `data[dataOffset .. dataOffset + dataLength)` as `type` records into `buf` at `offset`, copying
 * the bytes, and returns the offset after the last record. Zero bytes of data write nothing (the stream
 * terminator is a separate, deliberate record). Padding is zeroed, so `buf` may be uninitialised.
 */
export function frameInto (
  buf: Uint8Array, offset: number, type: number, requestId: number, data: Uint8Array,
  dataOffset: number = 0, dataLength: number = data.length - dataOffset
): number {
  if (dataOffset < 0 || dataLength < 0 || dataOffset + dataLength > data.length) {
    throw new RangeError(`data range [${dataOffset}, +${dataLength}) is outside ${data.length} bytes`)
  }
  if (offset < 0 || offset + framedLength(dataLength) > buf.length) {
    throw new RangeError(`${framedLength(dataLength)} framed bytes do not fit at offset ${offset} of ${buf.length}`)
  }
  let pos = offset
  let src = dataOffset
  const end = dataOffset + dataLength
  while (src < end) {
    const n = end - src > STREAM_RECORD_LEN ? STREAM_RECORD_LEN : end - src
    const pad = paddingFor(n)
    pos = writeHeader(buf, pos, type, requestId, n, pad)
    buf.set(n === data.length ? data : data.subarray(src, src + n), pos)
    pos += n
    src += n
    for (let i = 0; i < pad; i++) buf[pos++] = 0
  }
  return pos
}

/**
 * Frames `data` as `type` records without copying it: [header, payload view, padding?, header, ...].
 * Payload items are `subarray` views of `data` (the caller must not modify it until written); padding
 * items are views of one shared, read-only zero buffer. Empty data gives an empty list.
 */
export function frameChunks (type: number, requestId: number, data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const len = data.length
  if (len === 0) return out
  const records = Math.ceil(len / STREAM_RECORD_LEN)
  // One allocation for all headers; each header is a view of it.
  const headers = Buffer.allocUnsafe(records * HEADER_LEN)
  let src = 0
  for (let i = 0; i < records; i++) {
    const n = len - src > STREAM_RECORD_LEN ? STREAM_RECORD_LEN : len - src
    const pad = paddingFor(n)
    const at = i * HEADER_LEN
    writeHeader(headers, at, type, requestId, n, pad)
    out.push(headers.subarray(at, at + HEADER_LEN), n === len ? data : data.subarray(src, src + n))
    if (pad !== 0) out.push(PAD_VIEWS[pad]!)
    src += n
  }
  return out
}

/** The zero-length record that ends a stream (spec §3.3). Only ever the final record of that stream. */
export function buildStreamEnd (type: number, requestId: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN)
  writeHeader(buf, 0, type, requestId, 0, 0)
  return buf
}

/**
 * The coalesced write of a response (php's fcgi_flush with END_REQUEST in the last packet): one buffer
 * holding `stdout` framed as `type` records (none when null or empty), then, when `end` is given, the
 * zero-length STDOUT terminator and END_REQUEST. `type` applies to the data records only: the terminator
 * always closes STDOUT. Use frameChunks for large bodies instead.
 */
export function frameResponse (
  requestId: number,
  stdout: Uint8Array | null,
  end: { appStatus: number, protocolStatus: number } | null,
  type: number = RecordType.STDOUT
): Buffer {
  const dataLength = stdout === null ? 0 : stdout.length
  const size = framedLength(dataLength) + (end === null ? 0 : HEADER_LEN + FIXED_RECORD_LEN)
  // allocUnsafe: small responses come from Node's pool (cheap); every byte is written below.
  const buf = Buffer.allocUnsafe(size)
  let pos = stdout === null || dataLength === 0 ? 0 : frameInto(buf, 0, type, requestId, stdout)
  if (end !== null) {
    pos = writeHeader(buf, pos, RecordType.STDOUT, requestId, 0, 0)
    writeEndRequest(buf, pos, requestId, end.appStatus, end.protocolStatus)
  }
  return buf
}
