// Record writer and fixed records (FastCGI spec §3.3, §4.1, §4.2, §5.1, §5.4, §5.5): golden bytes,
// stream splitting at STREAM_RECORD_LEN, coalesced responses, zero-copy chunks.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import {
  FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role
} from '../../../src/fastcgi/constants.ts'
import { paddingFor, readHeader, writeHeader } from '../../../src/fastcgi/header.ts'
import {
  buildStreamEnd, frameChunks, frameInto, frameResponse, framedLength
} from '../../../src/fastcgi/record-writer.ts'
import {
  buildAbortRequest, buildBeginRequest, buildEndRequest, buildGetValues, buildGetValuesResult,
  buildUnknownType, parseBeginRequest, parseEndRequest, writeEndRequest
} from '../../../src/fastcgi/records.ts'

interface Split { type: number, requestId: number, content: Buffer, padding: number }

// A deliberately naive decoder, independent of RecordParser, that also checks the padding is zero.
function split (buf: Uint8Array): Split[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const out: Split[] = []
  let pos = 0
  while (pos < b.length) {
    assert.ok(b.length - pos >= 8, 'truncated header')
    assert.equal(b[pos], 1, 'version')
    assert.equal(b[pos + 7], 0, 'reserved')
    const len = b.readUInt16BE(pos + 4)
    const padding = b[pos + 6]!
    assert.ok(pos + 8 + len + padding <= b.length, 'truncated record')
    const pad = b.subarray(pos + 8 + len, pos + 8 + len + padding)
    assert.ok(pad.every((x) => x === 0), 'padding is zero')
    out.push({ type: b[pos + 1]!, requestId: b.readUInt16BE(pos + 2), content: b.subarray(pos + 8, pos + 8 + len), padding })
    pos += 8 + len + padding
  }
  return out
}

function pattern (n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 131 + 7) & 0xff
  return b
}

function bytes (...parts: Array<number[] | Uint8Array>): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p)))
}

test('paddingFor pads to a multiple of 8', () => {
  assert.deepEqual([0, 1, 2, 7, 8, 9, 15, 16, 65528, 65535].map(paddingFor), [0, 7, 6, 1, 0, 7, 1, 0, 0, 1])
})

test('writeHeader / readHeader golden bytes', () => {
  const buf = Buffer.alloc(12, 0xaa)
  assert.equal(writeHeader(buf, 2, RecordType.STDOUT, 0x1234, 0xfff8, 7), 10)
  assert.deepEqual([...buf], [0xaa, 0xaa, 1, 6, 0x12, 0x34, 0xff, 0xf8, 7, 0, 0xaa, 0xaa])
  assert.deepEqual(readHeader(buf, 2), { version: 1, type: 6, requestId: 0x1234, contentLength: 0xfff8, paddingLength: 7 })
  assert.throws(() => writeHeader(buf, 0, RecordType.STDOUT, 65536, 0, 0), RangeError)
  assert.throws(() => writeHeader(buf, 0, RecordType.STDOUT, 1, 65536, 0), RangeError)
  assert.throws(() => writeHeader(buf, 0, 256, 1, 0, 0), RangeError)
  assert.throws(() => writeHeader(buf, 0, RecordType.STDOUT, -1, 0, 0), RangeError)
})

test('framedLength is exactly what frameInto writes', () => {
  const cases: Array<[number, number]> = [
    [0, 0], [1, 16], [7, 16], [8, 16], [9, 24],
    [65527, 65536], [65528, 65536], [65529, 65536 + 16], [66000, 65536 + 8 + 472], [66001, 65536 + 8 + 480],
    [131056, 131072], [131057, 131072 + 16]
  ]
  for (const [n, expected] of cases) {
    assert.equal(framedLength(n), expected, `framedLength(${n})`)
    const buf = Buffer.alloc(expected + 3)
    assert.equal(frameInto(buf, 3, RecordType.STDOUT, 1, Buffer.alloc(n)), expected + 3, `frameInto(${n})`)
  }
})

test('a 66,000-byte STDOUT: a 65528-byte record (no padding) and the 472-byte remainder; then the terminator', () => {
  const data = pattern(66000)
  const framed = Buffer.alloc(framedLength(data.length))
  frameInto(framed, 0, RecordType.STDOUT, 1, data)
  const stream = Buffer.concat([framed, buildStreamEnd(RecordType.STDOUT, 1)])
  assert.equal(stream.length, 8 + 65528 + 8 + 472 + 8)
  assert.deepEqual([...stream.subarray(0, 8)], [1, 6, 0, 1, 0xff, 0xf8, 0, 0])
  assert.ok(stream.subarray(8, 8 + 65528).equals(data.subarray(0, 65528)))
  assert.deepEqual([...stream.subarray(65536, 65544)], [1, 6, 0, 1, 0x01, 0xd8, 0, 0])
  assert.ok(stream.subarray(65544, 65544 + 472).equals(data.subarray(65528)))
  assert.deepEqual([...stream.subarray(66016)], [1, 6, 0, 1, 0, 0, 0, 0])
})

test('a 66,001-byte STDOUT: the 473-byte remainder is padded with 7 zero bytes', () => {
  const data = pattern(66001)
  const framed = Buffer.alloc(framedLength(data.length), 0xee) // pre-filled: padding must be written
  assert.equal(frameInto(framed, 0, RecordType.STDOUT, 0x0102, data), framed.length)
  assert.deepEqual([...framed.subarray(65536, 65544)], [1, 6, 1, 2, 0x01, 0xd9, 7, 0])
  assert.ok(framed.subarray(65544, 65544 + 473).equals(data.subarray(65528)))
  assert.deepEqual([...framed.subarray(65544 + 473)], [0, 0, 0, 0, 0, 0, 0])
})

test('frameInto frames a slice of data at an offset and checks its ranges', () => {
  const data = Buffer.from('..hello, world..')
  const buf = Buffer.alloc(4 + framedLength(12), 0xee)
  assert.equal(frameInto(buf, 4, RecordType.STDERR, 9, data, 2, 12), buf.length)
  assert.deepEqual([...buf], [
    0xee, 0xee, 0xee, 0xee,
    1, 7, 0, 9, 0, 12, 4, 0, ...Buffer.from('hello, world'), 0, 0, 0, 0
  ])
  assert.equal(frameInto(buf, 4, RecordType.STDERR, 9, data, 16), 4) // zero bytes: no record
  assert.throws(() => frameInto(buf, 4, RecordType.STDERR, 9, data, 2, 15), RangeError)
  assert.throws(() => frameInto(buf, 5, RecordType.STDERR, 9, data, 2, 12), /do not fit/)
  assert.throws(() => frameInto(Buffer.alloc(10), 0, RecordType.STDOUT, 1, data), RangeError)
})

test('frameChunks: headers, views sharing the input memory, shared zero padding', () => {
  const backing = pattern(200_000)
  const data = backing.subarray(1000, 1000 + 131057) // 65528 + 65528 + 1
  const chunks = frameChunks(RecordType.STDOUT, 3, data)
  assert.equal(chunks.length, 7) // 3 headers + 3 payloads + 1 padding
  const [h1, p1, h2, p2, h3, p3, pad] = chunks as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array]
  assert.deepEqual([...h1], [1, 6, 0, 3, 0xff, 0xf8, 0, 0])
  assert.deepEqual([...h2], [1, 6, 0, 3, 0xff, 0xf8, 0, 0])
  assert.deepEqual([...h3], [1, 6, 0, 3, 0, 1, 7, 0])
  for (const [view, offset, length] of [[p1, 0, 65528], [p2, 65528, 65528], [p3, 131056, 1]] as const) {
    assert.equal(view.buffer, backing.buffer, 'payload is a view, not a copy')
    assert.equal(view.byteOffset, data.byteOffset + offset)
    assert.equal(view.length, length)
  }
  assert.deepEqual([...pad], [0, 0, 0, 0, 0, 0, 0])
  // the same bytes as frameInto
  const copied = Buffer.alloc(framedLength(data.length))
  frameInto(copied, 0, RecordType.STDOUT, 3, data)
  assert.ok(Buffer.concat(chunks).equals(copied))
  // a payload that fits one record is returned as is
  const small = Buffer.from('abcdefgh')
  const [, payload, ...rest] = frameChunks(RecordType.STDIN, 1, small)
  assert.equal(payload, small)
  assert.equal(rest.length, 0) // 8 bytes: no padding item
  assert.deepEqual(frameChunks(RecordType.STDOUT, 1, Buffer.alloc(0)), [])
})

test('buildStreamEnd golden bytes', () => {
  assert.deepEqual([...buildStreamEnd(RecordType.STDOUT, 0x0203)], [1, 6, 2, 3, 0, 0, 0, 0])
  assert.deepEqual([...buildStreamEnd(RecordType.STDIN, 1)], [1, 5, 0, 1, 0, 0, 0, 0])
})

test('frameResponse: data, terminator and END_REQUEST in one buffer (golden)', () => {
  const body = Buffer.from('Status: 404 Not Found\r\n\r\nnope!') // 30 bytes: 2 padding
  assert.equal(body.length, 30)
  const buf = frameResponse(5, body, { appStatus: 0, protocolStatus: ProtocolStatus.REQUEST_COMPLETE })
  assert.deepEqual([...buf], [...bytes(
    [1, 6, 0, 5, 0, 30, 2, 0], body, [0, 0],
    [1, 6, 0, 5, 0, 0, 0, 0],
    [1, 3, 0, 5, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  )])
})

test('frameResponse: data only, end only, and nothing', () => {
  const body = Buffer.from('12345678')
  assert.ok(frameResponse(1, body, null).equals(bytes([1, 6, 0, 1, 0, 8, 0, 0], body)))
  const endOnly = bytes([1, 6, 0, 1, 0, 0, 0, 0], [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 7, 2, 0, 0, 0])
  assert.ok(frameResponse(1, null, { appStatus: 7, protocolStatus: ProtocolStatus.OVERLOADED }).equals(endOnly))
  // an empty body never produces a zero-length data record
  assert.ok(frameResponse(1, new Uint8Array(0), { appStatus: 7, protocolStatus: ProtocolStatus.OVERLOADED }).equals(endOnly))
  assert.equal(frameResponse(1, null, null).length, 0)
  assert.equal(frameResponse(1, Buffer.alloc(0), null).length, 0)
})

test('frameResponse: STDERR data is followed by the STDOUT terminator', () => {
  const buf = frameResponse(2, Buffer.from('oops'), { appStatus: 1, protocolStatus: 0 }, RecordType.STDERR)
  assert.deepEqual(split(buf).map((r) => [r.type, r.content.length]), [
    [RecordType.STDERR, 4], [RecordType.STDOUT, 0], [RecordType.END_REQUEST, 8]
  ])
})

test('frameResponse: a large body splits, and the only empty STDOUT is the one before END_REQUEST', () => {
  const body = pattern(150_000)
  const records = split(frameResponse(0xffff, body, { appStatus: 0, protocolStatus: 0 }))
  assert.deepEqual(records.map((r) => [r.type, r.requestId, r.content.length]), [
    [6, 0xffff, 65528], [6, 0xffff, 65528], [6, 0xffff, 150_000 - 131056], [6, 0xffff, 0], [3, 0xffff, 8]
  ])
  assert.ok(Buffer.concat(records.slice(0, 3).map((r) => r.content)).equals(body))
})

test('BEGIN_REQUEST golden bytes and parse', () => {
  const rec = buildBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN)
  assert.deepEqual([...rec], [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
  assert.deepEqual(parseBeginRequest(rec.subarray(8)), { role: Role.RESPONDER, flags: FCGI_KEEP_CONN })
  assert.deepEqual(parseBeginRequest(buildBeginRequest(0x4321, 0x0203, 0).subarray(8)), { role: 0x0203, flags: 0 })
  for (const n of [0, 7, 9]) {
    assert.throws(() => parseBeginRequest(Buffer.alloc(n)), { name: 'ProtocolError', code: 'FPM_ERR_PROTOCOL_RECORD' })
  }
})

test('ABORT_REQUEST golden bytes', () => {
  assert.deepEqual([...buildAbortRequest(0x0102)], [1, 2, 1, 2, 0, 0, 0, 0])
})

test('END_REQUEST golden bytes, writeEndRequest in place, and parse', () => {
  assert.deepEqual([...buildEndRequest(1, 0, ProtocolStatus.REQUEST_COMPLETE)],
    [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  assert.deepEqual([...buildEndRequest(0x1234, 0x01020304, ProtocolStatus.UNKNOWN_ROLE)],
    [1, 3, 0x12, 0x34, 0, 8, 0, 0, 1, 2, 3, 4, 3, 0, 0, 0])
  assert.deepEqual([...buildEndRequest(1, -1, ProtocolStatus.CANT_MPX_CONN)],
    [1, 3, 0, 1, 0, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0])
  const buf = Buffer.alloc(20, 0xee)
  assert.equal(writeEndRequest(buf, 2, 7, 255, ProtocolStatus.OVERLOADED), 18)
  assert.deepEqual([...buf], [0xee, 0xee, 1, 3, 0, 7, 0, 8, 0, 0, 0, 0, 0, 255, 2, 0, 0, 0, 0xee, 0xee])
  assert.deepEqual(parseEndRequest(buf.subarray(10, 18)), { appStatus: 255, protocolStatus: 2 })
  assert.deepEqual(parseEndRequest(buildEndRequest(1, 0xfffffffe, 0).subarray(8)), { appStatus: 0xfffffffe, protocolStatus: 0 })
  assert.throws(() => parseEndRequest(Buffer.alloc(16)), { code: 'FPM_ERR_PROTOCOL_RECORD' })
})

test('UNKNOWN_TYPE golden bytes', () => {
  assert.deepEqual([...buildUnknownType(42)], [1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0])
})

test('GET_VALUES_RESULT golden bytes', () => {
  const rec = buildGetValuesResult([['FCGI_MPXS_CONNS', '0']])
  assert.ok(rec.equals(bytes(
    [1, 10, 0, 0, 0, 18, 6, 0],
    [15, 1], Buffer.from('FCGI_MPXS_CONNS0'),
    [0, 0, 0, 0, 0, 0]
  )))
  const two = buildGetValuesResult([['FCGI_MAX_CONNS', '10'], ['FCGI_MAX_REQS', '50']])
  assert.deepEqual([...two], [...bytes(
    [1, 10, 0, 0, 0, 35, 5, 0],
    [14, 2], Buffer.from('FCGI_MAX_CONNS10'), [13, 2], Buffer.from('FCGI_MAX_REQS50'),
    [0, 0, 0, 0, 0]
  )])
  assert.deepEqual([...buildGetValuesResult([])], [1, 10, 0, 0, 0, 0, 0, 0])
  assert.throws(() => buildGetValuesResult([['X', 'y'.repeat(70_000)]]), RangeError)
})

test('GET_VALUES golden bytes', () => {
  const rec = buildGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS'])
  assert.ok(rec.equals(bytes(
    [1, 9, 0, 0, 0, 48, 0, 0],
    [14, 0], Buffer.from('FCGI_MAX_CONNS'),
    [13, 0], Buffer.from('FCGI_MAX_REQS'),
    [15, 0], Buffer.from('FCGI_MPXS_CONNS')
  )))
})
