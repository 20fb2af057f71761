// Micro-benchmark of the FastCGI codec (src/fastcgi): record parsing, stream framing, params decoding,
// and what a pool thread then reads of the params (common/params-shape.ts).
// One core, no sockets. Each case is checked for correctness first, then timed for about --time ms.
//
//   node_modules/.bin/node bench/micro/codec.ts [--json] [--time=1000]
//
// Project target: >= 1 GB/s of STDIN/STDOUT payload on one core.

import { Buffer } from 'node:buffer'
import os from 'node:os'
import {
  FCGI_KEEP_CONN, RecordParser, RecordType, Role, STREAM_RECORD_LEN,
  buildBeginRequest, buildStreamEnd, decodeParams, decodeParamsText, encodeParams, frameChunks, frameInto, frameResponse, framedLength,
  decodeParamNames, paramsText, type ParamNames
} from '../../src/fastcgi/index.ts'
import { shapeOf, valueAt } from '../../src/common/params-shape.ts'
import { cgiRequestParts } from '../../src/worker/cgi-request.ts'
import { buildEnv } from '../../src/worker/env.ts'

const args = process.argv.slice(2)
const asJson = args.includes('--json')
const timeArg = args.find((a) => a.startsWith('--time='))
const TIME_MS = timeArg === undefined ? 1000 : Number(timeArg.slice('--time='.length))

interface Result {
  name: string
  /** What one op is (a call, or one request of a batch). */
  op: string
  opsPerSec: number
  /** Payload megabytes (1e6 bytes) per second, when the case has a payload. */
  mbPerSec: number | null
  /** FastCGI records per second, for parser cases. */
  recordsPerSec: number | null
}

const results: Result[] = []

interface Per {
  /** Ops done by one fn() call (a batch of requests), default 1. */
  ops?: number
  op?: string
  /** Payload bytes and records handled by one fn() call. */
  payloadBytes?: number
  records?: number
}

// Runs `fn` for TIME_MS after a warm-up; `fn` returns a number folded into a sink so the work cannot be
// optimised away.
let blackhole = 0
function measure (name: string, fn: () => number, per: Per = {}): void {
  const warmUntil = performance.now() + Math.min(300, TIME_MS / 3)
  while (performance.now() < warmUntil) blackhole += fn()
  let ops = 0
  const start = process.hrtime.bigint()
  const deadline = performance.now() + TIME_MS
  do {
    for (let i = 0; i < 8; i++) blackhole += fn()
    ops += 8
  } while (performance.now() < deadline)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const callsPerSec = ops / seconds
  results.push({
    name,
    op: per.op ?? 'call',
    opsPerSec: callsPerSec * (per.ops ?? 1),
    mbPerSec: per.payloadBytes === undefined ? null : (callsPerSec * per.payloadBytes) / 1e6,
    recordsPerSec: per.records === undefined ? null : callsPerSec * per.records
  })
}

function check (cond: boolean, what: string): void {
  if (!cond) throw new Error(`benchmark self-check failed: ${what}`)
}

function split (stream: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  // copies: each chunk has its own ArrayBuffer, like socket reads
  for (let i = 0; i < stream.length; i += size) out.push(Buffer.from(stream.subarray(i, i + size)))
  return out
}

// ---- parse: a large body, 64 KiB STDIN records -------------------------------------------------------

const BODY_RECORDS = 256 // 16 MiB of payload per op
const bodyPayload = Buffer.alloc(BODY_RECORDS * STREAM_RECORD_LEN, 0x61)
function bodyStream (prefix: number): Buffer {
  const framed = Buffer.alloc(prefix + framedLength(bodyPayload.length))
  // a leading PARAMS record of `prefix` bytes shifts every STDIN record off the 64 KiB chunk grid
  let at = 0
  if (prefix > 0) at = frameInto(framed, 0, RecordType.PARAMS, 1, Buffer.alloc(prefix - 8))
  frameInto(framed, at, RecordType.STDIN, 1, bodyPayload)
  return framed
}

const PARSE_COUNTS = { records: 0, bytes: 0 }
const countingParser = new RecordParser({
  onRecord (_type, _id, content) {
    PARSE_COUNTS.records++
    PARSE_COUNTS.bytes += content.length
  }
})
function parseChunks (chunks: readonly Buffer[]): number {
  PARSE_COUNTS.records = 0
  PARSE_COUNTS.bytes = 0
  for (let i = 0; i < chunks.length; i++) countingParser.push(chunks[i]!)
  return PARSE_COUNTS.records
}

// 64 KiB socket reads that do not line up with the 64 KiB records: every record straddles two chunks
// and is copied once (the realistic case).
const unaligned = split(bodyStream(24), 65536)
check(parseChunks(unaligned) === BODY_RECORDS + 1 && PARSE_COUNTS.bytes === bodyPayload.length + 16, 'unaligned parse')
check(countingParser.bufferedBytes === 0, 'unaligned tail')
measure('parse 64 KiB STDIN records, unaligned 64 KiB chunks (copies)', () => parseChunks(unaligned),
  { ops: BODY_RECORDS, op: 'record', payloadBytes: bodyPayload.length, records: BODY_RECORDS + 1 })

// Same records, chunks aligned to them: every content is a view (the zero-copy best case).
const aligned = split(bodyStream(0), 65536)
check(parseChunks(aligned) === BODY_RECORDS && PARSE_COUNTS.bytes === bodyPayload.length, 'aligned parse')
measure('parse 64 KiB STDIN records, aligned chunks (views)', () => parseChunks(aligned),
  { ops: BODY_RECORDS, op: 'record', payloadBytes: bodyPayload.length, records: BODY_RECORDS })

// ---- parse: small requests ----------------------------------------------------------------------

// A realistic nginx param set (25 pairs, ~1 KiB).
const NGINX_PARAMS: Array<[string, string]> = [
  ['SCRIPT_FILENAME', '/var/www/app/public/index.mjs'],
  ['QUERY_STRING', 'page=2&sort=desc&filter=active'],
  ['REQUEST_METHOD', 'GET'],
  ['CONTENT_TYPE', ''],
  ['CONTENT_LENGTH', ''],
  ['SCRIPT_NAME', '/index.mjs'],
  ['REQUEST_URI', '/products/list?page=2&sort=desc&filter=active'],
  ['DOCUMENT_URI', '/index.mjs'],
  ['DOCUMENT_ROOT', '/var/www/app/public'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['REQUEST_SCHEME', 'https'],
  ['HTTPS', 'on'],
  ['GATEWAY_INTERFACE', 'CGI/1.1'],
  ['SERVER_SOFTWARE', 'nginx/1.26.2'],
  ['REMOTE_ADDR', '203.0.113.54'],
  ['REMOTE_PORT', '51234'],
  ['SERVER_ADDR', '10.0.0.5'],
  ['SERVER_PORT', '443'],
  ['SERVER_NAME', 'shop.example.com'],
  ['REDIRECT_STATUS', '200'],
  ['HTTP_HOST', 'shop.example.com'],
  ['HTTP_USER_AGENT', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15'],
  ['HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'],
  ['HTTP_ACCEPT_LANGUAGE', 'en-GB,en;q=0.9,fr;q=0.8'],
  ['HTTP_COOKIE', 'session=3f9a1c2e7b8d4f60a1b2c3d4e5f60718293a4b5c6d7e8f90; cart=eyJpdGVtcyI6WzEyLDM0LDU2XX0; ' +
    'theme=dark; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000001; consent=analytics%3Dyes%26ads%3Dno; ' +
    'ab_test=variant_b; last_seen=2024-05-01T12%3A34%3A56Z; csrf=Zm9vYmFyYmF6cXV4cXV1eA; tz=Europe%2FLondon; ' +
    'prefs=eyJsYW5nIjoiZW4iLCJjdXJyZW5jeSI6IkdCUCIsImRlbnNpdHkiOiJjb21wYWN0In0']
]
const paramsBody = encodeParams(NGINX_PARAMS)
check(NGINX_PARAMS.length === 25 && paramsBody.length > 900 && paramsBody.length < 1300, 'params set size')

function smallRequest (requestId: number): Buffer {
  const params = Buffer.alloc(framedLength(paramsBody.length))
  frameInto(params, 0, RecordType.PARAMS, requestId, paramsBody)
  return Buffer.concat([
    buildBeginRequest(requestId, Role.RESPONDER, FCGI_KEEP_CONN),
    params,
    buildStreamEnd(RecordType.PARAMS, requestId),
    buildStreamEnd(RecordType.STDIN, requestId)
  ])
}
const SMALL_REQUESTS = 1000
const smallStream = Buffer.concat(Array.from({ length: SMALL_REQUESTS }, (_, i) => smallRequest(1 + (i & 0xff))))
const smallChunks = split(smallStream, 65536)
check(parseChunks(smallChunks) === SMALL_REQUESTS * 4, 'small requests parse')
measure(`parse small requests (BEGIN + ${paramsBody.length} B PARAMS + 2 empty), 64 KiB chunks`,
  () => parseChunks(smallChunks), { ops: SMALL_REQUESTS, op: 'request', records: SMALL_REQUESTS * 4 })

// ---- params decode ------------------------------------------------------------------------------

const decoded: string[] = []
decodeParams(paramsBody, decoded)
check(decoded.length === 50 && decoded[49] === NGINX_PARAMS[24]![1], 'params decode')
measure('decodeParams, 25-pair nginx set', () => {
  const out: string[] = []
  decodeParams(paramsBody, out)
  return out.length
})

// The params work of one request on a pool thread: decode the text, find the shape (common/params-shape.ts),
// the Request's parts, the env object. Names seen before (a web server's, request after request), and a
// new list of names every request (64 lists, more than the shapes kept: each request makes its shape).
const sameNames = Array.from({ length: 64 }, (_, i) => paramsText(encodeParams(NGINX_PARAMS.map(([n, v]) => [n, n === 'REMOTE_PORT' ? String(40000 + i) : v]))))
const newNames = Array.from({ length: 64 }, (_, i) => paramsText(encodeParams([...NGINX_PARAMS, [`HTTP_X_TRACE_${i}`, 'x']])))
// One object, as a pool's env is: buildEnv compiles its factory per shape and pool env (a fresh {} per
// call measured the uncompiled path, ~1.5 us more, which no server takes).
const POOL_ENV: Readonly<Record<string, string>> = {}
function requestParams (texts: readonly string[], i: number): number {
  const params: string[] = []
  decodeParamsText(texts[i & 63]!, params)
  const shape = shapeOf(params)
  return cgiRequestParts(params, shape).url.length + buildEnv(params, POOL_ENV, shape).REQUEST_URI!.length
}
check(requestParams(sameNames, 0) === requestParams(newNames, 0) && shapeOf(decodeParamsOf(sameNames[1]!)) === shapeOf(decodeParamsOf(sameNames[2]!)), 'request params')
let nth = 0
measure('params of one request (decode, shape, Request parts, env), names seen before', () => requestParams(sameNames, nth++), { op: 'request' })
measure('the same, a new list of names every request (no shape reused)', () => requestParams(newNames, nth++), { op: 'request' })

// The default mode's main thread routes a request on a few values (server/exchange.ts paramsDone) and hands
// the text to a thread: the names only and the values it reads (decodeParamNames, paramValue), against
// decoding every value as a thread does.
function routeParams (texts: readonly string[], i: number, everyValue: boolean): number {
  const text = texts[i & 63]!
  const params: ParamNames = []
  if (everyValue) decodeParamsText(text, params as string[])
  else decodeParamNames(text, params)
  const shape = shapeOf(params)
  const value = (at: number): string => valueAt(params, at, '', text)
  return value(shape.requestUri).length + value(shape.scriptFilename).length + value(shape.scriptName).length +
    value(shape.queryString).length + value(shape.contentLength).length + value(shape.requestMethods[0] ?? -1).length
}
check(routeParams(sameNames, 0, true) === routeParams(sameNames, 0, false) && routeParams(sameNames, 0, true) > 0, 'route params')
measure('the main thread\'s routing of one request (default mode): names, shape, 6 values', () => routeParams(sameNames, nth++, false), { op: 'request' })
measure('the same, every value decoded (as before 2026-11-22)', () => routeParams(sameNames, nth++, true), { op: 'request' })

function decodeParamsOf (text: string): string[] {
  const out: string[] = []
  decodeParamsText(text, out)
  return out
}

// ---- framing ------------------------------------------------------------------------------------

const MIB = 1024 * 1024
const bigPayload = Buffer.alloc(MIB, 0x62)
check(Buffer.concat(frameChunks(RecordType.STDOUT, 1, bigPayload)).length === framedLength(MIB), 'frameChunks size')
measure('frameChunks, 1 MiB STDOUT (views, no copy)', () => frameChunks(RecordType.STDOUT, 1, bigPayload).length,
  { payloadBytes: MIB })

const intoBuf = Buffer.allocUnsafe(framedLength(MIB))
check(frameInto(intoBuf, 0, RecordType.STDOUT, 1, bigPayload) === intoBuf.length, 'frameInto size')
measure('frameInto, 1 MiB STDOUT into a preallocated buffer (copy)', () =>
  frameInto(intoBuf, 0, RecordType.STDOUT, 1, bigPayload), { payloadBytes: MIB })

const smallBody = Buffer.alloc(1024, 0x63)
const END = { appStatus: 0, protocolStatus: 0 }
check(frameResponse(1, smallBody, END).length === framedLength(1024) + 24, 'frameResponse size')
measure('frameResponse, 1 KiB body + terminator + END_REQUEST', () => frameResponse(1, smallBody, END).length,
  { payloadBytes: 1024 })

// ---- report -------------------------------------------------------------------------------------

const env = {
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cpus: os.cpus().length,
  platform: `${process.platform}-${process.arch}`,
  timeMs: TIME_MS
}

if (asJson) {
  process.stdout.write(JSON.stringify({ env, results }, null, 2) + '\n')
} else {
  const fmt = (n: number | null, digits = 0): string => n === null ? '' : n.toLocaleString('en-US', { maximumFractionDigits: digits })
  const rows = results.map((r) => [r.name, `${fmt(r.opsPerSec)} ${r.op}s`, fmt(r.mbPerSec), fmt(r.recordsPerSec)])
  const head = ['case', 'ops/s', 'MB/s', 'records/s']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  console.log(`node ${env.node}, ${env.cpu} (${env.cpus} cpus), ${TIME_MS} ms per case`)
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const row of rows) console.log(line(row))
  console.log('MB/s = 1e6 payload bytes per second (headers and padding not counted)')
}
if (blackhole === -1) console.log('') // keep the results observable
