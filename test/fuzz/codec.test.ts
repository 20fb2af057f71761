// Property tests for the FastCGI codec (FastCGI spec §3.3 framing, §3.4 name-value pairs), bounded in
// time like undici's fuzzing suite: each property stops after LIMIT_MS (10 s locally, 30 s in CI) even
// when its numRuns are not done. The only failures allowed on hostile input are our ProtocolErrors.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import { RecordType, STREAM_RECORD_LEN } from '../../src/fastcgi/constants.ts'
import { decodeParams, encodeParams } from '../../src/fastcgi/params.ts'
import { RecordParser } from '../../src/fastcgi/record-parser.ts'
import { frameChunks, frameInto, frameResponse, framedLength } from '../../src/fastcgi/record-writer.ts'
import { parseBeginRequest, parseEndRequest } from '../../src/fastcgi/records.ts'

const CI = process.env.CI !== undefined && process.env.CI !== ''
const LIMIT_MS = CI ? 30_000 : 10_000
function options (numRuns: number): fc.Parameters<unknown> {
  return { numRuns: CI ? numRuns * 4 : numRuns, interruptAfterTimeLimit: LIMIT_MS }
}

interface Rec { type: number, requestId: number, content: Uint8Array }
interface WireRec extends Rec { padding: number, padByte: number }

// Cheap deterministic bytes for large contents (fast-check is slow at generating 64 KiB arrays).
function filled (n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  let x = seed | 1
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) | 0
    b[i] = x >>> 24
  }
  return b
}

const contentArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer()).map(([n, s]) => filled(n, s)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 60_000, max: 65_535 }), fc.integer()).map(([n, s]) => filled(n, s)) }
)

const wireRecArb: fc.Arbitrary<WireRec> = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  requestId: fc.integer({ min: 0, max: 0xffff }),
  content: contentArb,
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 255 })),
  padByte: fc.integer({ min: 0, max: 255 })
})

// Hand-rolled encoder, independent of the writer under test.
function wire (records: readonly WireRec[]): Buffer {
  const parts: Buffer[] = []
  for (const r of records) {
    const h = Buffer.from([1, r.type, r.requestId >> 8, r.requestId & 255, r.content.length >> 8, r.content.length & 255, r.padding, 0])
    parts.push(h, Buffer.from(r.content), Buffer.alloc(r.padding, r.padByte))
  }
  return Buffer.concat(parts)
}

// Cut points (as fractions of the length, so they shrink well) turned into chunks; copies, so that no
// chunk shares memory with another.
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 })
function chunked (stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * stream.length)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let prev = 0
  for (const p of [...points, stream.length]) {
    if (p > prev) out.push(Buffer.from(stream.subarray(prev, p)))
    prev = p
  }
  return out
}

function parseAll (chunks: readonly Uint8Array[]): { records: Rec[], parser: RecordParser } {
  const records: Rec[] = []
  const parser = new RecordParser({ onRecord (type, requestId, content) { records.push({ type, requestId, content }) } })
  for (const c of chunks) parser.push(Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength))
  return { records, parser }
}

function isOurProtocolError (err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== 'ProtocolError') return false
  const code: unknown = (err as Error & { code?: unknown }).code
  return typeof code === 'string' && code.startsWith('FPM_ERR_PROTOCOL_')
}

test('(1) any chunking of a valid record stream parses to exactly the same records', () => {
  fc.assert(fc.property(fc.array(wireRecArb, { maxLength: 12 }), cutsArb, (source, cuts) => {
    const stream = wire(source)
    const { records, parser } = parseAll(chunked(stream, cuts))
    assert.equal(parser.bufferedBytes, 0)
    assert.equal(records.length, source.length)
    records.forEach((r, i) => {
      const s = source[i]!
      assert.equal(r.type, s.type)
      assert.equal(r.requestId, s.requestId)
      assert.ok(Buffer.from(s.content).equals(r.content), `record ${i} content`)
    })
    // A strict prefix leaves exactly the unconsumed tail buffered and delivers no partial record.
    if (stream.length > 0) {
      const cut = Math.floor((cuts[0] ?? 0.5) * (stream.length - 1))
      const { records: partial, parser: p } = parseAll([stream.subarray(0, cut)])
      assert.ok(partial.length <= source.length)
      assert.ok(p.bufferedBytes < 8 + 65535)
    }
  }), options(1000))
})

const latin1Unit = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c))
const nameUnit = fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c))
const nameArb = fc.oneof(
  fc.string({ unit: nameUnit, minLength: 1, maxLength: 20 }),
  fc.string({ unit: nameUnit, minLength: 120, maxLength: 400 })
)
const valueArb = fc.oneof(
  fc.string({ unit: latin1Unit, maxLength: 20 }),
  fc.string({ unit: latin1Unit, minLength: 120, maxLength: 3000 })
)

test('(2) decode(encode(pairs)) is the identity for latin1 params, short and long', () => {
  fc.assert(fc.property(fc.array(fc.tuple(nameArb, valueArb), { maxLength: 30 }), (pairs) => {
    const encoded = encodeParams(pairs)
    const out: string[] = []
    decodeParams(encoded, out)
    assert.deepEqual(out, pairs.flat())
    // and byte-exact the other way: re-encoding the decoded strings gives the same bytes
    assert.ok(encodeParams(out).equals(encoded))
  }), options(1000))
})

// Streams that get past the version check often, with record types whose bodies the sink decodes.
const hostileRecArb: fc.Arbitrary<WireRec> = fc.record({
  type: fc.oneof(fc.constantFrom(1, 3, 4, 9, 10), fc.integer({ min: 0, max: 255 })),
  requestId: fc.integer({ min: 0, max: 0xffff }),
  content: fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.array(fc.tuple(nameArb, valueArb), { maxLength: 4 }).map((p) => encodeParams(p)),
    fc.constant(new Uint8Array(8))
  ),
  padding: fc.integer({ min: 0, max: 16 }),
  padByte: fc.integer({ min: 0, max: 255 })
})
const mutationsArb = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })
const hostileStreamArb = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.array(hostileRecArb, { maxLength: 8 }), mutationsArb).map(([records, mutations]) => {
    const stream = wire(records)
    for (const [at, byte] of mutations) if (stream.length > 0) stream[Math.floor(at * (stream.length - 1))] = byte
    return stream
  })
)

test('(3) hostile bytes in any chunking either parse or throw our ProtocolError, nothing else', () => {
  fc.assert(fc.property(hostileStreamArb, cutsArb, (stream, cuts) => {
    const pairs: string[] = []
    const parser = new RecordParser({
      onRecord (type, _requestId, content) {
        // exercise the body decoders the connection applies to these types
        if (type === RecordType.BEGIN_REQUEST) parseBeginRequest(content)
        else if (type === RecordType.END_REQUEST) parseEndRequest(content)
        else if (type === RecordType.PARAMS || type === RecordType.GET_VALUES || type === RecordType.GET_VALUES_RESULT) {
          decodeParams(content, pairs, 1000)
        }
      }
    })
    let failed: unknown = null
    for (const chunk of chunked(stream, cuts)) {
      try {
        parser.push(chunk)
      } catch (err) {
        if (!isOurProtocolError(err)) throw err
        if (failed === null) failed = err
        else assert.equal(err, failed) // a dead parser rethrows the same error
      }
      assert.ok(parser.bufferedBytes >= 0 && parser.bufferedBytes <= stream.length)
    }
  }), options(5000))
})

const sizeArb = fc.oneof(
  fc.constantFrom(0, 1, 7, 8, 9, 65527, 65528, 65529, 65530, 65531, 65532, 65533, 65534, 65535, 65536,
    131055, 131056, 131057, 131063, 131064, 131065, 196584, 196585),
  fc.integer({ min: 0, max: 200_000 })
)

function checkFramed (records: readonly Rec[], type: number, requestId: number, data: Buffer): void {
  let offset = 0
  records.forEach((r, i) => {
    assert.equal(r.type, type)
    assert.equal(r.requestId, requestId)
    assert.ok(r.content.length > 0, 'no zero-length data record')
    assert.ok(r.content.length <= STREAM_RECORD_LEN)
    if (i < records.length - 1) assert.equal(r.content.length, STREAM_RECORD_LEN)
    assert.ok(data.subarray(offset, offset + r.content.length).equals(r.content), `record ${i}`)
    offset += r.content.length
  })
  assert.equal(offset, data.length)
}

test('(4) frameInto, frameChunks and frameResponse parse back to the original payload', () => {
  fc.assert(fc.property(
    sizeArb, fc.integer(), fc.constantFrom(RecordType.STDOUT, RecordType.STDERR, RecordType.STDIN),
    fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 20 }), cutsArb,
    (size, seed, type, requestId, at, cuts) => {
      const data = filled(size, seed)
      // frameInto at an offset in a dirty buffer
      const buf = Buffer.alloc(at + framedLength(size) + 5, 0xee)
      const end = frameInto(buf, at, type, requestId, data)
      assert.equal(end, at + framedLength(size))
      const viaInto = buf.subarray(at, end)
      checkFramed(parseAll(chunked(viaInto, cuts)).records, type, requestId, data)
      // frameChunks pieces pushed one by one, and as one stream: the same bytes as frameInto
      const pieces = frameChunks(type, requestId, data)
      checkFramed(parseAll(pieces).records, type, requestId, data)
      assert.ok(Buffer.concat(pieces).equals(viaInto))
      // frameResponse: the data records, then the empty STDOUT and END_REQUEST
      const response = parseAll([frameResponse(requestId, data, { appStatus: 0, protocolStatus: 0 }, type)]).records
      const tail = response.splice(-2)
      checkFramed(response, type, requestId, data)
      assert.deepEqual(tail.map((r) => [r.type, r.requestId, r.content.length]),
        [[RecordType.STDOUT, requestId, 0], [RecordType.END_REQUEST, requestId, 8]])
    }
  ), options(300))
})
