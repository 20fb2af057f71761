// Name-value pairs (FastCGI spec §3.4): golden length encodings (Go's sizeTests), round trips,
// byte-exact latin1, every malformed input, and the names-only decode against the full one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import { ExpectedNames, decodeExpected, decodeParamNames, decodeParams, decodeParamsText, encodeParams, encodedParamsLength, paramValue, paramsText, type ParamNames } from '../../../src/fastcgi/params.ts'

function decode (bytes: Uint8Array | number[], maxPairs?: number): string[] {
  const out: string[] = []
  decodeParams(bytes instanceof Uint8Array ? bytes : Buffer.from(bytes), out, maxPairs)
  return out
}

function assertMalformed (bytes: number[] | Uint8Array, why: RegExp, maxPairs?: number): void {
  const out = ['KEEP', 'me']
  const input = bytes instanceof Uint8Array ? bytes : Buffer.from(bytes)
  assert.throws(() => { decodeParams(input, out, maxPairs) }, (err: any) => {
    assert.equal(err.name, 'ProtocolError')
    assert.equal(err.code, 'FPM_ERR_PROTOCOL_PARAMS')
    assert.match(err.message, why)
    return true
  })
  assert.deepEqual(out, ['KEEP', 'me'], 'out is restored on a throw')
}

// Go net/http/fcgi sizeTests, plus 1.
const SIZES: Array<[number, number[]]> = [
  [0, [0x00]],
  [1, [0x01]],
  [127, [0x7f]],
  [128, [0x80, 0x00, 0x00, 0x80]],
  [1000, [0x80, 0x00, 0x03, 0xe8]],
  [33554431, [0x81, 0xff, 0xff, 0xff]]
]

test('length encodings at 0, 1, 127, 128, 1000 and 2^25-1 (value length)', () => {
  for (const [size, prefix] of SIZES) {
    const value = 'v'.repeat(size)
    const buf = encodeParams([['N', value]])
    assert.equal(buf.length, 1 + prefix.length + 1 + size)
    assert.equal(encodedParamsLength([['N', value]]), buf.length)
    assert.deepEqual([...buf.subarray(0, 1 + prefix.length + 1)], [0x01, ...prefix, 0x4e], `size ${size}`)
    const out = decode(buf)
    assert.equal(out.length, 2)
    assert.equal(out[0], 'N')
    assert.equal(out[1]!.length, size)
    assert.equal(out[1], value)
  }
})

test('length encodings at 1, 127, 128, 1000 (name length)', () => {
  for (const [size, prefix] of SIZES.slice(1, 5)) {
    const name = 'n'.repeat(size)
    const buf = encodeParams([name, ''])
    assert.deepEqual([...buf.subarray(0, prefix.length + 1)], [...prefix, 0x00], `size ${size}`)
    assert.equal(buf.length, prefix.length + 1 + size)
    assert.deepEqual(decode(buf), [name, ''])
  }
})

test('golden decode: short and long forms mixed', () => {
  const bytes = [
    0x04, 0x03, ...Buffer.from('HOSTa.b'),
    0x05, 0x80, 0x00, 0x00, 0x81, ...Buffer.from('VALUE'), ...Buffer.alloc(129, 0x41),
    0x80, 0x00, 0x00, 0x05, 0x00, ...Buffer.from('EMPTY') // a long-form length below 128 is accepted
  ]
  assert.deepEqual(decode(bytes), ['HOST', 'a.b', 'VALUE', 'A'.repeat(129), 'EMPTY', ''])
  assert.deepEqual(decode([]), [])
})

test('round trip: tuples, flat arrays and Maps encode the same bytes', () => {
  const pairs: Array<[string, string]> = [
    ['REQUEST_METHOD', 'GET'],
    ['QUERY_STRING', ''],
    ['HTTP_COOKIE', 'c='.repeat(200)],
    ['X'.repeat(300), 'y']
  ]
  const fromTuples = encodeParams(pairs)
  assert.ok(fromTuples.equals(encodeParams(pairs.flat())))
  assert.ok(fromTuples.equals(encodeParams(new Map(pairs))))
  assert.ok(fromTuples.equals(encodeParams((function * () { yield * pairs })())))
  assert.equal(encodedParamsLength(pairs), fromTuples.length)
  assert.deepEqual(decode(fromTuples), pairs.flat())
  assert.equal(encodeParams([]).length, 0)
})

test('non-ASCII bytes 0x80-0xFF round-trip byte-exactly as latin1', () => {
  const all = Buffer.alloc(256)
  for (let i = 0; i < 256; i++) all[i] = i
  const high = all.subarray(0x80)
  // name: the 128 high bytes; value: all 256 byte values (both lengths in the 4-byte form)
  const raw = Buffer.concat([Buffer.from([0x80, 0, 0, 0x80, 0x80, 0, 1, 0]), high, all])
  const out = decode(raw)
  assert.equal(out[0]!.length, 128)
  assert.equal(out[1]!.length, 256)
  for (let i = 0; i < 256; i++) assert.equal(out[1]!.charCodeAt(i), i)
  for (let i = 0; i < 128; i++) assert.equal(out[0]!.charCodeAt(i), 0x80 + i)
  assert.ok(encodeParams(out).equals(raw))
  // UTF-8 bytes are not decoded: the consumer sees the bytes (é = C3 A9)
  assert.deepEqual(decode([0x01, 0x02, 0x50, 0xc3, 0xa9]), ['P', '\u00c3\u00a9'])
})

test('decodes a plain Uint8Array and a view at a non-zero offset', () => {
  const encoded = encodeParams([['A', 'b'], ['CC', 'dd']])
  const backing = new Uint8Array(encoded.length + 10)
  backing.set(encoded, 5)
  assert.deepEqual(decode(backing.subarray(5, 5 + encoded.length)), ['A', 'b', 'CC', 'dd'])
  assert.deepEqual(decode(new Uint8Array(encoded)), ['A', 'b', 'CC', 'dd'])
})

test('duplicates are kept in wire order, and pairs are appended to out', () => {
  const out = ['PREV', '1']
  decodeParams(encodeParams([['A', '1'], ['B', '2'], ['A', '3']]), out)
  assert.deepEqual(out, ['PREV', '1', 'A', '1', 'B', '2', 'A', '3'])
})

test('a NUL byte in a value is allowed (only names are C strings)', () => {
  assert.deepEqual(decode([0x01, 0x03, 0x41, 0x61, 0x00, 0x62]), ['A', 'a\0b'])
})

test('malformed: a length runs past the end', () => {
  assertMalformed([0x80], /name length truncated at byte 0/)
  assertMalformed([0x80, 0x00, 0x00], /name length truncated/)
  assertMalformed([0x01], /value length missing at byte 1/)
  assertMalformed([0x80, 0x00, 0x00, 0x01], /value length missing at byte 4/)
  assertMalformed([0x01, 0x80, 0x00], /value length truncated at byte 1/)
  assertMalformed([0x01, 0x01, 0x41, 0x62, 0x03], /value length missing/) // trailing byte after a good pair
})

test('malformed: a pair runs past the end', () => {
  assertMalformed([0x05, 0x00, 0x41, 0x42], /pair at byte 0 \(name 5 bytes, value 0 bytes\) runs past the end \(4 bytes\)/)
  assertMalformed([0x01, 0x05, 0x41, 0x62, 0x63], /runs past the end/)
  assertMalformed([0x01, 0x01, 0x41, 0x62, 0x01, 0x05, 0x41, 0x62], /pair at byte 4/)
  // 31-bit lengths: no wrap-around, however large
  assertMalformed([0xff, 0xff, 0xff, 0xff, 0x00, 0x41], /name 2147483647 bytes/)
  assertMalformed([0x01, 0xff, 0xff, 0xff, 0xff, 0x41], /value 2147483647 bytes/)
  assertMalformed([0x81, 0x00, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x41], /runs past the end/)
})

test('malformed: an empty name', () => {
  assertMalformed([0x00, 0x00], /empty name at byte 0/)
  assertMalformed([0x00, 0x01, 0x41], /empty name/)
  assertMalformed([0x01, 0x00, 0x41, 0x80, 0x00, 0x00, 0x00, 0x00], /empty name at byte 3/)
})

test('malformed: a NUL byte in a name', () => {
  assertMalformed([0x03, 0x00, 0x41, 0x00, 0x42], /NUL byte in name/)
  assertMalformed([0x01, 0x00, 0x00], /NUL byte in name/)
})

test('malformed: more pairs than maxPairs (counted over all of out)', () => {
  const three = encodeParams([['A', '1'], ['B', '2'], ['C', '3']])
  assert.deepEqual(decode(three, 3), ['A', '1', 'B', '2', 'C', '3'])
  assertMalformed(three, /more than 2 pairs/, 2)
  // out already holds KEEP=me: the limit counts it
  assertMalformed(three, /more than 3 pairs/, 3)
  assertMalformed(three, /more than 0 pairs/, 0)
  const out: string[] = []
  decodeParams(three, out, 6)
  decodeParams(three, out, 6)
  assert.equal(out.length, 12)
  assert.throws(() => { decodeParams(three, out, 6) }, { code: 'FPM_ERR_PROTOCOL_PARAMS' })
  assert.equal(out.length, 12)
})

test('encodeParams refuses what decodeParams would reject or cannot represent', () => {
  assert.throws(() => encodeParams([['', 'x']]), RangeError)
  assert.throws(() => encodeParams([['A\0B', 'x']]), RangeError)
  assert.throws(() => encodeParams([['A', '\u20ac']]), /above U\+00FF/)
  assert.throws(() => encodeParams([['\u0100', 'x']]), RangeError)
  assert.throws(() => encodeParams(['A', 'b', 'C']), /even number/)
  assert.throws(() => encodeParams([['A', 1 as unknown as string]]), TypeError)
})

// decodeParamNames (the default mode's main thread): the names, and where each pair starts, from which
// paramValue decodes the value; against decodeParamsText on the same text, lengths around 127/128.
const latin1Text = (min: number, max: number): fc.Arbitrary<string> =>
  fc.oneof(fc.integer({ min, max }), fc.constantFrom(...[127, 128, 129, 300].filter((n) => n >= min && n <= max)))
    .chain((n) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n }))
    .map((codes) => String.fromCharCode(...codes))

test('decodeParamNames: the names of decodeParamsText, and paramValue gives each value back (property)', () => {
  const name = latin1Text(1, 300).filter((s) => !s.includes('\0'))
  fc.assert(fc.property(fc.array(fc.tuple(name, latin1Text(0, 300)), { maxLength: 12 }), (pairs) => {
    const text = paramsText(encodeParams(pairs))
    const full: string[] = []
    decodeParamsText(text, full)
    const names: ParamNames = ['KEPT', 0]
    decodeParamNames(text, names)
    assert.equal(names.length, full.length + 2, 'appended to out')
    for (let i = 0; i < full.length; i += 2) {
      assert.equal(names[i + 2], full[i])
      const at = names[i + 3]
      assert.equal(typeof at, 'number')
      assert.equal(paramValue(text, at as number), full[i + 1])
    }
  }), { numRuns: 300 })
})

test('decodeParamNames rejects what decodeParamsText rejects, with the same message, and restores out (property)', () => {
  // Random bytes, often valid: short lengths, and the bytes of real pairs cut or extended.
  const bytes = fc.oneof(
    fc.array(fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 255 })), { maxLength: 40 }),
    fc.tuple(fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.string({ maxLength: 3 })), { maxLength: 3 }), fc.integer({ min: -3, max: 2 }))
      .map(([pairs, cut]) => {
        const b = [...encodeParams(pairs.map(([n, v]) => [n.replaceAll('\0', 'x').replace(/[^\x00-\xff]/gu, 'y'), v.replace(/[^\x00-\xff]/gu, 'y')] as [string, string]))]
        return cut < 0 ? b.slice(0, Math.max(0, b.length + cut)) : [...b, ...Array<number>(cut).fill(0)]
      })
  )
  fc.assert(fc.property(bytes, fc.integer({ min: 1, max: 4 }), (codes, maxPairs) => {
    const text = String.fromCharCode(...codes)
    const outcome = (decode: () => void): string => { try { decode(); return 'ok' } catch (err) { return `${(err as { code?: string }).code}: ${(err as Error).message}` } }
    const full = ['KEEP', 'me']
    const names: ParamNames = ['KEEP', 'me']
    const a = outcome(() => { decodeParamsText(text, full, maxPairs) })
    const b = outcome(() => { decodeParamNames(text, names, maxPairs) })
    assert.equal(b, a)
    if (a !== 'ok') assert.deepEqual(names, ['KEEP', 'me'], 'out restored')
    else for (let i = 2; i < full.length; i += 2) assert.equal(paramValue(text, names[i + 1] as number), full[i + 1])
  }), { numRuns: 1000 })
})

// decodeExpected (the last shape's names, compared in place): whatever names are expected, the decode
// gives the same pairs and the same errors as without them. Expected lists made from the real names,
// some kept, some with one byte changed (first, last or in a 4-byte word), cut, lengthened or replaced,
// in a list shorter or longer than the real one.
test('decode with expected names: the same pairs and errors as without, whatever is expected (property)', () => {
  const name = latin1Text(1, 130).filter((s) => !s.includes('\0'))
  const edit = fc.oneof(
    fc.constant((n: string) => n),
    fc.constant((n: string) => n),
    fc.nat().map((i) => (n: string) => { const at = i % n.length; return n.slice(0, at) + String.fromCharCode((n.charCodeAt(at) % 255) + 1) + n.slice(at + 1) }),
    fc.constant((n: string) => n.length > 1 ? n.slice(0, -1) : 'x'),
    fc.constant((n: string) => `${n}y`),
    name.map((other) => () => other)
  )
  fc.assert(fc.property(fc.array(fc.tuple(name, latin1Text(0, 140)), { maxLength: 10 }), fc.array(edit, { maxLength: 12 }), fc.array(name, { maxLength: 2 }),
    fc.integer({ min: -6, max: 0 }), fc.integer({ min: 1, max: 12 }), (pairs, edits, extra, cut, maxPairs) => {
      const bytes = encodeParams(pairs)
      const cutBytes = bytes.subarray(0, Math.max(0, bytes.length + cut))
      const text = paramsText(cutBytes)
      const view = new DataView(cutBytes.buffer, cutBytes.byteOffset, cutBytes.byteLength)
      const expected = new ExpectedNames([...edits.map((e, i) => e(pairs[i]?.[0] ?? 'NAME')), ...extra])
      const outcome = (decode: () => void): string => { try { decode(); return 'ok' } catch (err) { return `${(err as { code?: string }).code}: ${(err as Error).message}` } }
      const plain: string[] = []
      let hinted: ParamNames = []
      const a = outcome(() => { decodeParamsText(text, plain, maxPairs) })
      assert.equal(outcome(() => { hinted = decodeExpected(text, view, expected, true, maxPairs) }), a)
      if (a === 'ok') assert.deepEqual(hinted, plain)
      const names: ParamNames = []
      let namesHinted: ParamNames = []
      assert.equal(outcome(() => { decodeParamNames(text, names, maxPairs) }), a)
      assert.equal(outcome(() => { namesHinted = decodeExpected(text, view, expected, false, maxPairs) }), a)
      if (a === 'ok') assert.deepEqual(namesHinted, names)
    }), { numRuns: 2000 })
})

// decodeExpected over a series of requests with the same names and one ExpectedNames (values kept,
// changed at one byte, of another length, emptied; each record at an offset in its buffer): each decode
// equals the plain one. (Also a guard for any reuse of values: keeping each pair's last value when its
// bytes were the same was tried, and not kept: 44,802 -> 46,825 instructions per hello request.)
test('decodeExpected over a series of requests: each pair is the request\'s own (property)', () => {
  const name = latin1Text(1, 130).filter((s) => !s.includes('\0'))
  const value = latin1Text(0, 140)
  const change = fc.oneof(
    fc.constant((v: string) => v),
    fc.constant((v: string) => v),
    fc.nat().map((i) => (v: string) => v.length === 0 ? 'x' : v.slice(0, i % v.length) + String.fromCharCode((v.charCodeAt(i % v.length) + 1) % 256) + v.slice((i % v.length) + 1)),
    fc.constant((v: string) => v.slice(1)),
    fc.constant((v: string) => `${v}z`),
    fc.constant(() => ''),
    value.map((other) => () => other)
  )
  fc.assert(fc.property(fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 8 }), fc.array(fc.array(change, { minLength: 8, maxLength: 8 }), { minLength: 1, maxLength: 5 }),
    (pairs, steps) => {
      const expected = new ExpectedNames(pairs.map(([n]) => n))
      let current = pairs
      for (const step of [[], ...steps]) {
        current = current.map(([n, v], i) => [n, step[i]?.(v) ?? v] as [string, string])
        // a record of its own each time, at an offset in a larger buffer
        const encoded = encodeParams(current)
        const record = Buffer.concat([Buffer.from('pad'), encoded]).subarray(3)
        const text = paramsText(record)
        const plain: string[] = []
        decodeParamsText(text, plain)
        const hinted = decodeExpected(text, new DataView(record.buffer, record.byteOffset, record.byteLength), expected, true)
        assert.deepEqual(hinted, plain)
      }
    }), { numRuns: 1000 })
})
