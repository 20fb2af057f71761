// Turns CGI responses into FastCGI bytes (php's fcgi_write/fcgi_flush tiers, STYLE.md §5.6):
// a small response is ONE buffer (STDOUT record, padding, the empty STDOUT terminator and
// END_REQUEST); a large body is a header plus views of the caller's bytes, never copied.
// Also the one table of responses node-fpm makes itself (404, 403, 408, 413, 431, 500, 502, 503, 504).

import { Buffer } from 'node:buffer'
import {
  RecordType, ProtocolStatus, HEADER_LEN, STREAM_RECORD_LEN,
  writeHeader, paddingFor, frameChunks, framedLength, writeEndRequest
} from '../fastcgi/index.ts'
import { bodyBytes } from '../common/messages.ts'

const END_LEN = HEADER_LEN + HEADER_LEN + 8 // empty STDOUT terminator + END_REQUEST record (8 + 8 body)
/** Bodies up to this size are copied into the single coalesced write; larger ones are sent as views. */
export const COALESCE_MAX_BYTES = 16 * 1024
const ZERO_PAD = Buffer.alloc(8)

/**
 * Frames `head` (latin1 CGI header text) and `body` (bytes, or latin1 text) as STDOUT, optionally followed by the stream
 * terminator and END_REQUEST. Returns the buffers to write in order (usually exactly one).
 */
export function frameStdout (requestId: number, head: string | null, body: Uint8Array | string | null, end: boolean, appStatus = 0): Uint8Array[] {
  const headLen = head === null ? 0 : head.length
  const bodyLen = body === null ? 0 : typeof body === 'string' ? body.length : body.byteLength
  if (headLen + bodyLen <= STREAM_RECORD_LEN && bodyLen <= COALESCE_MAX_BYTES) {
    const payload = headLen + bodyLen
    const pad = payload === 0 ? 0 : paddingFor(payload)
    const buf = Buffer.allocUnsafe((payload === 0 ? 0 : HEADER_LEN + payload + pad) + (end ? END_LEN : 0))
    let off = 0
    if (payload > 0) {
      writeHeader(buf, 0, RecordType.STDOUT, requestId, payload, pad)
      off = HEADER_LEN
      if (head !== null) off += buf.write(head, off, 'latin1')
      if (typeof body === 'string') off += buf.write(body, off, 'latin1')
      else if (body !== null) { buf.set(body, off); off += bodyLen }
      for (let i = 0; i < pad; i++) buf[off++] = 0 // at most 7: cheaper than a fill() call
    }
    if (end) writeEnd(buf, off, requestId, appStatus)
    return [buf]
  }
  const out: Uint8Array[] = []
  if (head !== null && headLen > 0) {
    const headBuf = Buffer.allocUnsafe(framedLength(headLen))
    const pad = paddingFor(headLen)
    writeHeader(headBuf, 0, RecordType.STDOUT, requestId, headLen, pad)
    headBuf.write(head, HEADER_LEN, 'latin1')
    if (pad > 0) headBuf.set(ZERO_PAD.subarray(0, pad), HEADER_LEN + headLen)
    out.push(headBuf)
  }
  if (body !== null && bodyLen > 0) {
    for (const piece of frameChunks(RecordType.STDOUT, requestId, bodyBytes(body) as Uint8Array)) out.push(piece)
  }
  if (end) {
    const endBuf = Buffer.allocUnsafe(END_LEN)
    writeEnd(endBuf, 0, requestId, appStatus)
    out.push(endBuf)
  }
  return out
}

/** Only the end: the zero-length STDOUT terminator and END_REQUEST. */
export function frameEnd (requestId: number, appStatus: number, protocolStatus: number = ProtocolStatus.REQUEST_COMPLETE): Buffer {
  const buf = Buffer.allocUnsafe(END_LEN)
  writeEnd(buf, 0, requestId, appStatus, protocolStatus)
  return buf
}

/** END_REQUEST alone (no stdout was ever sent: unknown role, overloaded). */
export function frameEndOnly (requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + 8)
  writeEndRequest(buf, 0, requestId, appStatus, protocolStatus)
  return buf
}

/** An FCGI_STDERR record (diagnostics the web server logs, e.g. nginx "FastCGI sent in stderr"). */
export function frameStderr (requestId: number, text: string): Buffer {
  const len = Buffer.byteLength(text)
  const pad = paddingFor(len)
  const buf = Buffer.alloc(HEADER_LEN + len + pad)
  writeHeader(buf, 0, RecordType.STDERR, requestId, len, pad)
  buf.write(text, HEADER_LEN)
  return buf
}

function writeEnd (buf: Buffer, off: number, requestId: number, appStatus: number, protocolStatus: number = ProtocolStatus.REQUEST_COMPLETE): void {
  writeHeader(buf, off, RecordType.STDOUT, requestId, 0, 0)
  writeEndRequest(buf, off + HEADER_LEN, requestId, appStatus, protocolStatus)
}

/** Responses node-fpm produces itself, by failure kind. One table, so each kind has one status. */
export const ServerResponse = {
  /** php: missing or unresolvable SCRIPT_FILENAME */
  notFound: { status: 404, body: 'File not found.\n' },
  /** php: suffix not in security.limit_extensions */
  denied: { status: 403, body: 'Access denied.\n' },
  bodyTooLarge: { status: 413, body: 'Request Entity Too Large\n' },
  /** the web server stopped sending an incomplete body for request.body_timeout (nginx's client_body_timeout answer) */
  bodyTimeout: { status: 408, body: 'Request Timeout\n' },
  paramsTooLarge: { status: 431, body: 'Request Header Fields Too Large\n' },
  /** the handler threw, or returned something that is not a Response */
  handlerError: { status: 500, body: 'Internal Server Error\n' },
  /** the thread running the request died (process.exit, crash, out of memory): what nginx shows when a php-fpm child dies */
  workerDied: { status: 502, body: 'Bad Gateway\n' },
  /** the pool is closing or cannot take the request */
  unavailable: { status: 503, body: 'Service Unavailable\n' },
  /** the request ran longer than request_terminate_timeout */
  timeout: { status: 504, body: 'Gateway Timeout\n' }
} as const

export type ServerResponseKind = keyof typeof ServerResponse

const reasons: Record<number, string> = {
  403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 413: 'Content Too Large', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout'
}

/** CGI head + body of a server-made response; HEAD requests get no body. */
export function serverResponse (kind: ServerResponseKind, isHead: boolean): { head: string, body: Uint8Array | null } {
  const r = ServerResponse[kind]
  const extra = r.status === 503 ? 'Retry-After: 1\r\n' : ''
  const head = `Status: ${r.status} ${reasons[r.status] ?? ''}\r\nContent-Type: text/plain; charset=UTF-8\r\n${extra}\r\n`
  return { head, body: isHead ? null : Buffer.from(r.body) }
}
