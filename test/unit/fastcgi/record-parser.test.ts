// RecordParser (FastCGI spec §3.3 framing): golden decode of an nginx-style request, chunking,
// padding, view-vs-copy semantics, and the failure contract.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { RecordParser } from '../../../src/fastcgi/record-parser.ts'
import type { RecordSink } from '../../../src/fastcgi/record-parser.ts'
import { RecordType, Role, FCGI_KEEP_CONN } from '../../../src/fastcgi/constants.ts'
import { decodeParams } from '../../../src/fastcgi/params.ts'
import { parseBeginRequest } from '../../../src/fastcgi/records.ts'

interface Rec { type: number, requestId: number, content: Buffer }

function collector (): { sink: RecordSink, records: Rec[] } {
  const records: Rec[] = []
  return { records, sink: { onRecord (type, requestId, content) { records.push({ type, requestId, content }) } } }
}

function hex (s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex')
}

// Hand-written record (independent of the writer under test).
function rec (type: number, requestId: number, content: Uint8Array, pad = (-content.length) & 7, padByte = 0): Buffer {
  const h = Buffer.from([1, type, requestId >> 8, requestId & 255, content.length >> 8, content.length & 255, pad, 0])
  return Buffer.concat([h, content, Buffer.alloc(pad, padByte)])
}

// What nginx sends for `POST /index.php?a=1&b=2` with fastcgi_keep_conn on: BEGIN_REQUEST, PARAMS in
// two records (the second with a 4-byte value length), the empty PARAMS, STDIN, the empty STDIN.
const NGINX_REQUEST = hex(`
01 01 00 01 00 08 00 00 00 01 01 00 00 00 00 00
01 04 00 01 00 92 06 00 0f 17 53 43 52 49 50 54 5f 46 49 4c 45 4e 41 4d 45 2f 76 61 72 2f 77 77
77 2f 68 74 6d 6c 2f 69 6e 64 65 78 2e 70 68 70 0c 07 51 55 45 52 59 5f 53 54 52 49 4e 47 61 3d
31 26 62 3d 32 0e 04 52 45 51 55 45 53 54 5f 4d 45 54 48 4f 44 50 4f 53 54 0c 21 43 4f 4e 54 45
4e 54 5f 54 59 50 45 61 70 70 6c 69 63 61 74 69 6f 6e 2f 78 2d 77 77 77 2d 66 6f 72 6d 2d 75 72
6c 65 6e 63 6f 64 65 64 0e 02 43 4f 4e 54 45 4e 54 5f 4c 45 4e 47 54 48 31 31 00 00 00 00 00 00
01 04 00 01 00 f0 00 00 0b 0a 53 43 52 49 50 54 5f 4e 41 4d 45 2f 69 6e 64 65 78 2e 70 68 70 0b
12 52 45 51 55 45 53 54 5f 55 52 49 2f 69 6e 64 65 78 2e 70 68 70 3f 61 3d 31 26 62 3d 32 09 0b
48 54 54 50 5f 48 4f 53 54 65 78 61 6d 70 6c 65 2e 63 6f 6d 0f 80 00 00 90 48 54 54 50 5f 55 53
45 52 5f 41 47 45 4e 54 4d 6f 7a 69 6c 6c 61 2f 35 2e 30 20 28 58 31 31 3b 20 4c 69 6e 75 78 20
78 38 36 5f 36 34 29 20 41 70 70 6c 65 57 65 62 4b 69 74 2f 35 33 37 2e 33 36 20 28 4b 48 54 4d
4c 2c 20 6c 69 6b 65 20 47 65 63 6b 6f 29 20 43 68 72 6f 6d 65 2f 31 32 34 2e 30 2e 30 2e 30 20
53 61 66 61 72 69 2f 35 33 37 2e 33 36 20 45 64 67 2f 31 32 34 2e 30 2e 32 34 37 38 2e 35 31 20
4f 50 52 2f 31 31 30 2e 30 2e 30 2e 30 20 28 6e 6f 64 65 2d 66 70 6d 29
01 04 00 01 00 00 00 00
01 05 00 01 00 0b 05 00 68 65 6c 6c 6f 3d 77 6f 72 6c 64 00 00 00 00 00
01 05 00 01 00 00 00 00
`)

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 ' +
  'Safari/537.36 Edg/124.0.2478.51 OPR/110.0.0.0 (node-fpm)'

function checkNginxRequest (records: Rec[]): void {
  assert.deepEqual(records.map((r) => [r.type, r.requestId, r.content.length]), [
    [RecordType.BEGIN_REQUEST, 1, 8],
    [RecordType.PARAMS, 1, 146],
    [RecordType.PARAMS, 1, 240],
    [RecordType.PARAMS, 1, 0],
    [RecordType.STDIN, 1, 11],
    [RecordType.STDIN, 1, 0]
  ])
  assert.deepEqual(parseBeginRequest(records[0]!.content), { role: Role.RESPONDER, flags: FCGI_KEEP_CONN })
  const params: string[] = []
  decodeParams(records[1]!.content, params)
  decodeParams(records[2]!.content, params)
  assert.deepEqual(params, [
    'SCRIPT_FILENAME', '/var/www/html/index.php',
    'QUERY_STRING', 'a=1&b=2',
    'REQUEST_METHOD', 'POST',
    'CONTENT_TYPE', 'application/x-www-form-urlencoded',
    'CONTENT_LENGTH', '11',
    'SCRIPT_NAME', '/index.php',
    'REQUEST_URI', '/index.php?a=1&b=2',
    'HTTP_HOST', 'example.com',
    'HTTP_USER_AGENT', UA
  ])
  assert.equal(records[4]!.content.toString('latin1'), 'hello=world')
}

test('golden nginx request in one chunk', () => {
  assert.equal(NGINX_REQUEST.length, 16 + 160 + 248 + 8 + 24 + 8)
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  parser.push(NGINX_REQUEST)
  checkNginxRequest(records)
  assert.equal(parser.bufferedBytes, 0)
})

test('golden nginx request byte by byte, and at every single split point', () => {
  {
    const { sink, records } = collector()
    const parser = new RecordParser(sink)
    for (let i = 0; i < NGINX_REQUEST.length; i++) parser.push(NGINX_REQUEST.subarray(i, i + 1))
    checkNginxRequest(records)
    assert.equal(parser.bufferedBytes, 0)
  }
  for (let cut = 1; cut < NGINX_REQUEST.length; cut++) {
    const { sink, records } = collector()
    const parser = new RecordParser(sink)
    parser.push(NGINX_REQUEST.subarray(0, cut))
    parser.push(NGINX_REQUEST.subarray(cut))
    checkNginxRequest(records)
  }
})

test('records are delivered as soon as their content is complete; bufferedBytes counts the unread tail', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  const stdin = rec(RecordType.STDIN, 7, Buffer.from('abcdefghij')) // 8 + 10 + 6 padding
  const next = rec(RecordType.STDIN, 7, Buffer.alloc(0))
  parser.push(stdin.subarray(0, 5))
  assert.equal(parser.bufferedBytes, 5)
  assert.equal(records.length, 0)
  parser.push(stdin.subarray(5, 17))
  assert.equal(records.length, 0)
  assert.equal(parser.bufferedBytes, 9) // header consumed, 9 of 10 content bytes waiting
  parser.push(stdin.subarray(17, 18))
  assert.equal(records.length, 1)
  assert.equal(records[0]!.content.toString(), 'abcdefghij')
  assert.equal(parser.bufferedBytes, 0)
  parser.push(stdin.subarray(18, 20)) // padding is skipped as it arrives
  assert.equal(parser.bufferedBytes, 0)
  parser.push(Buffer.concat([stdin.subarray(20), next.subarray(0, 3)]))
  assert.equal(parser.bufferedBytes, 3)
  parser.push(Buffer.alloc(0)) // empty chunks are ignored
  assert.equal(parser.bufferedBytes, 3)
  parser.push(next.subarray(3))
  assert.deepEqual(records.map((r) => r.content.length), [10, 0])
  assert.equal(parser.bufferedBytes, 0)
})

test('padding of any length 0..255 and any value is skipped', () => {
  const chunks: Buffer[] = []
  const expected: number[] = []
  for (let pad = 0; pad <= 255; pad += 17) {
    const len = (pad * 7) % 50
    chunks.push(rec(RecordType.STDOUT, pad, Buffer.alloc(len, pad), pad, 0xee))
    expected.push(len)
  }
  chunks.push(rec(RecordType.STDOUT, 1, Buffer.alloc(3, 9), 255, 0xff))
  expected.push(3)
  const stream = Buffer.concat(chunks)
  for (const step of [stream.length, 1, 7, 64]) {
    const { sink, records } = collector()
    const parser = new RecordParser(sink)
    for (let i = 0; i < stream.length; i += step) parser.push(stream.subarray(i, i + step))
    assert.deepEqual(records.map((r) => r.content.length), expected, `step ${step}`)
    for (const r of records.slice(0, -1)) assert.ok(r.content.every((b) => b === r.requestId))
    assert.ok(records.at(-1)!.content.equals(Buffer.alloc(3, 9)))
    assert.equal(parser.bufferedBytes, 0)
  }
})

test('maximum content length (65535) with maximum padding (255)', () => {
  const content = Buffer.alloc(65535)
  for (let i = 0; i < content.length; i++) content[i] = i * 31
  const stream = Buffer.concat([rec(RecordType.STDIN, 65535, content, 255, 1), rec(RecordType.STDIN, 65535, Buffer.alloc(0))])
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  parser.push(stream)
  assert.equal(records.length, 2)
  assert.equal(records[0]!.requestId, 65535)
  assert.ok(records[0]!.content.equals(content))
})

test('content inside one chunk is a view of that chunk, not a copy', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  const chunk = Buffer.concat([
    rec(RecordType.STDIN, 1, Buffer.from('first')),
    rec(RecordType.STDIN, 1, Buffer.from('second record'))
  ])
  parser.push(chunk)
  assert.equal(records.length, 2)
  assert.equal(records[0]!.content.buffer, chunk.buffer)
  assert.equal(records[0]!.content.byteOffset, chunk.byteOffset + 8)
  assert.equal(records[1]!.content.buffer, chunk.buffer)
  assert.equal(records[1]!.content.byteOffset, chunk.byteOffset + 16 + 8)
  assert.equal(records[1]!.content.toString(), 'second record')
  // a record whose content is exactly the rest of the chunk is still a view
  const exact = rec(RecordType.STDIN, 1, Buffer.from('12345678'))
  parser.push(exact.subarray(0, 8))
  const body = Buffer.from(exact.subarray(8)) // a chunk that is exactly the content
  parser.push(body)
  assert.equal(records[2]!.content.buffer, body.buffer)
  assert.equal(records[2]!.content.byteOffset, body.byteOffset)
})

test('content straddling chunks is copied into one standalone buffer, and stays valid', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  const content = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz')
  const stream = rec(RecordType.STDIN, 3, content)
  const a = Buffer.from(stream.subarray(0, 12))
  const b = Buffer.from(stream.subarray(12, 30))
  const c = Buffer.from(stream.subarray(30))
  parser.push(a)
  parser.push(b)
  parser.push(c)
  assert.equal(records.length, 1)
  const got = records[0]!.content
  assert.ok(got.equals(content))
  for (const chunk of [a, b, c]) assert.notEqual(got.buffer, chunk.buffer)
  // allocUnsafeSlow: its own ArrayBuffer of exactly the content size (safe to transfer to a worker)
  assert.equal(got.byteOffset, 0)
  assert.equal(got.buffer.byteLength, content.length)
  // overwriting the pushed chunks afterwards does not affect the copy; later pushes do not touch it
  a.fill(0)
  b.fill(0)
  c.fill(0)
  parser.push(rec(RecordType.STDIN, 3, Buffer.alloc(100, 0x55)))
  assert.ok(got.equals(content))
})

test('views handed out earlier are never overwritten by later pushes', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  const stream = Buffer.concat(Array.from({ length: 50 }, (_, i) => rec(RecordType.STDIN, 1, Buffer.alloc(1 + i * 13, i))))
  for (let i = 0; i < stream.length; i += 97) parser.push(stream.subarray(i, i + 97))
  assert.equal(records.length, 50)
  records.forEach((r, i) => {
    assert.equal(r.content.length, 1 + i * 13)
    assert.ok(r.content.every((b) => b === i), `record ${i}`)
  })
})

test('a header split across chunks, including 1-byte chunks over many records', () => {
  const contents = Array.from({ length: 200 }, (_, i) => Buffer.alloc(i % 20, i))
  const stream = Buffer.concat(contents.map((c, i) => rec(RecordType.PARAMS, i, c)))
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1))
  assert.equal(records.length, 200)
  records.forEach((r, i) => {
    assert.equal(r.requestId, i)
    assert.ok(r.content.equals(contents[i]!))
  })
})

test('a 64 KiB record delivered in 1-byte chunks (long chunk list) is reassembled', () => {
  const content = Buffer.alloc(65535)
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff
  const stream = rec(RecordType.STDIN, 2, content)
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1))
  assert.equal(records.length, 1)
  assert.ok(records[0]!.content.equals(content))
  assert.equal(parser.bufferedBytes, 0)
})

test('many records in one chunk are all delivered, in order', () => {
  const n = 10_000
  const stream = Buffer.concat(Array.from({ length: n }, (_, i) => rec(RecordType.STDIN, i & 0xffff, Buffer.from([i & 0xff]))))
  const { sink, records } = collector()
  new RecordParser(sink).push(stream)
  assert.equal(records.length, n)
  assert.ok(records.every((r, i) => r.requestId === i && r.content[0] === (i & 0xff)))
})

test('any version other than 1 is FPM_ERR_PROTOCOL_VERSION, naming the version', () => {
  for (const version of [0, 2, 255]) {
    const { sink, records } = collector()
    const parser = new RecordParser(sink)
    const good = rec(RecordType.STDIN, 1, Buffer.from('ok'))
    const bad = rec(RecordType.STDIN, 1, Buffer.from('no'))
    bad[0] = version
    assert.throws(() => { parser.push(Buffer.concat([good, bad])) }, (err: any) => {
      assert.equal(err.name, 'ProtocolError')
      assert.equal(err.code, 'FPM_ERR_PROTOCOL_VERSION')
      assert.match(err.message, new RegExp(`version ${version}\\b`))
      return true
    })
    assert.equal(records.length, 1) // the good record before it was delivered
  }
})

test('a bad version in a header split across chunks is detected once the header is complete', () => {
  const { sink } = collector()
  const parser = new RecordParser(sink)
  const bad = rec(RecordType.STDIN, 1, Buffer.from('xx'))
  bad[0] = 2
  parser.push(bad.subarray(0, 4))
  assert.throws(() => { parser.push(bad.subarray(4)) }, { code: 'FPM_ERR_PROTOCOL_VERSION' })
})

test('after a protocol error the parser is dead: push rethrows the same error until reset()', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  let first: unknown
  try {
    parser.push(hex('02 05 00 01 00 00 00 00'))
  } catch (err) {
    first = err
  }
  assert.equal((first as { code?: string }).code, 'FPM_ERR_PROTOCOL_VERSION')
  assert.equal(parser.bufferedBytes, 0) // buffers dropped
  assert.throws(() => { parser.push(rec(RecordType.STDIN, 1, Buffer.from('a'))) }, (err) => err === first)
  assert.equal(records.length, 0)
  parser.reset()
  parser.push(rec(RecordType.STDIN, 1, Buffer.from('a')))
  assert.equal(records.length, 1)
})

test('an exception from the sink propagates out of push, stops parsing, and kills the parser', () => {
  const boom = new Error('sink failed')
  const seen: number[] = []
  const parser = new RecordParser({
    onRecord (_type, requestId) {
      seen.push(requestId)
      if (requestId === 2) throw boom
    }
  })
  const stream = Buffer.concat([1, 2, 3].map((id) => rec(RecordType.STDIN, id, Buffer.from('x'))))
  assert.throws(() => { parser.push(stream) }, (err) => err === boom)
  assert.deepEqual(seen, [1, 2])
  assert.throws(() => { parser.push(rec(RecordType.STDIN, 4, Buffer.from('x'))) }, (err) => err === boom)
  assert.deepEqual(seen, [1, 2])
})

test('reset() from inside onRecord stops delivery of the rest of the chunk', () => {
  const seen: number[] = []
  const parser: RecordParser = new RecordParser({
    onRecord (_type, requestId) {
      seen.push(requestId)
      if (requestId === 2) parser.reset()
    }
  })
  parser.push(Buffer.concat([1, 2, 3].map((id) => rec(RecordType.STDIN, id, Buffer.from('x')))))
  assert.deepEqual(seen, [1, 2])
  assert.equal(parser.bufferedBytes, 0)
  parser.push(rec(RecordType.STDIN, 9, Buffer.from('y')))
  assert.deepEqual(seen, [1, 2, 9])
})

test('push() from inside onRecord is a programmer error', () => {
  const parser: RecordParser = new RecordParser({
    onRecord () { parser.push(rec(RecordType.STDIN, 1, Buffer.from('x'))) }
  })
  assert.throws(() => { parser.push(rec(RecordType.STDIN, 1, Buffer.from('x'))) }, /inside onRecord/)
})

test('reset() drops a partial record', () => {
  const { sink, records } = collector()
  const parser = new RecordParser(sink)
  parser.push(rec(RecordType.STDIN, 1, Buffer.from('partial')).subarray(0, 10))
  assert.equal(parser.bufferedBytes, 2)
  parser.reset()
  assert.equal(parser.bufferedBytes, 0)
  parser.push(rec(RecordType.STDIN, 5, Buffer.from('whole')))
  assert.deepEqual(records.map((r) => [r.requestId, r.content.toString()]), [[5, 'whole']])
})
