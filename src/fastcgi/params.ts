// Name-value pairs (FastCGI spec §3.4), the body of PARAMS, GET_VALUES and GET_VALUES_RESULT records.
// Each length is 1 byte when < 128, else 4 bytes big-endian with the high bit set (31-bit value).
// Names and values are decoded as latin1: one char per byte, so any byte sequence survives the round
// trip exactly; the consumer decides how to interpret non-ASCII bytes (e.g. as UTF-8 for URLs).

import { Buffer } from 'node:buffer'
import { ProtocolError } from '../common/errors.ts'

/** Pairs as tuples (a Map works too) or flat: `[name0, value0, name1, value1, ...]`. */
export type ParamPairs = Iterable<readonly [string, string]> | readonly string[]

const MAX_PARAM_LEN = 0x7fffffff
// Anything outside latin1 cannot be written byte-exactly (Buffer would keep the low byte only).
const NON_LATIN1 = /[^\x00-\xff]/ // eslint-disable-line no-control-regex

/**
 * Decodes every pair in `content` and appends `name, value` to `out` (flat), in wire order.
 * Duplicate names are kept: the consumer decides (php-fpm: the last one wins).
 *
 * `maxPairs` bounds the number of pairs `out` may hold in total (`out.length / 2`), so a caller that
 * decodes PARAMS record by record into one array passes the same limit each time.
 *
 * Throws ProtocolError FPM_ERR_PROTOCOL_PARAMS when a length or a pair runs past the end of `content`,
 * a name is empty or contains a NUL byte, or the pair limit is exceeded. On a throw `out` is restored
 * to its length on entry.
 */
export function decodeParams (content: Uint8Array, out: string[], maxPairs: number = Infinity): void {
  if (content.length === 0) return
  decodeParamsText(paramsText(content), out, maxPairs)
}

/**
 * The PARAMS bytes as one latin1 string (one char per byte): what the server hands a worker
 * thread. A one-byte string crosses a MessagePort as a plain copy inside V8's heap, where a
 * Uint8Array costs a backing store (malloc, a global handle, its sweeping) on both sides: measured
 * here ~3 µs less per request (node bench/micro/clone.ts).
 */
export function paramsText (content: Uint8Array): string {
  return latin1View(content).toString('latin1', 0, content.length)
}

/**
 * decodeParams over the latin1 text of the bytes (paramsText): the same pairs, checks and errors.
 * One native decode of the whole record, then String#slice per field: an order of magnitude faster
 * than one Buffer#toString per field (~50 for a typical nginx request). The slices may keep the
 * text alive, which is at most the request's params.
 */
export function decodeParamsText (text: string, out: string[], maxPairs: number = Infinity): void {
  decodeText(text, out, out.length, maxPairs, true, null, null)
}

/**
 * decodeParamsText (`values`) or decodeParamNames (not) into a new array sized for `expected`'s
 * names (the same pairs, checks and errors), `bytes` being those `text` was made from (byte i =
 * char i): a name whose bytes are those of the expected one at its place is that string. Without
 * `expected` or `bytes`, a plain decode.
 */
export function decodeExpected (text: string, bytes: DataView | null, expected: ExpectedNames | null, values: boolean, maxPairs: number = Infinity): ParamNames {
  const known = bytes === null ? null : expected
  // new Array(n): one allocation of the right size, where pushes grow the array twice for 21 pairs
  const out: ParamNames = known === null ? [] : new Array<string | number>(2 * known.names.length)
  decodeText(text, out, 0, maxPairs, values, known, bytes)
  return out
}

/**
 * The names a params list is expected to have, in order: the last request's from the same web server,
 * which sends the same names request after request. decodeExpected compares a name's bytes with the
 * expected one's, four at a time (their words made once here), and takes the expected string when
 * they match: the name is then neither sliced from the text (an allocation, a SlicedString from 13
 * chars on) nor compared later (common/params-shape.ts finds the same strings: one pointer compare per
 * name, where V8 hands the compare of two slices to its runtime). bench/instructions.ts, hello:
 * 53,033 -> 49,937 instructions per request, then 46,397 -> 44,908 with the words.
 */
export class ExpectedNames {
  readonly names: readonly string[]
  /**
   * Each name as 32-bit words (little-endian), ceil(length / 4) of them: its bytes 0-3, 4-7... and
   * last its final four bytes, which may overlap the word before (no byte loop for the rest). A name
   * shorter than 4 bytes is one word of its bytes.
   */
  readonly #words: Int32Array
  /** Where name k's words start in #words. */
  readonly #firstWord: Int32Array

  /** `names` hold no NUL and no char above U+00FF (names a decode returned). */
  constructor (names: readonly string[]) {
    this.names = names
    this.#firstWord = new Int32Array(names.length)
    const words: number[] = []
    for (let k = 0; k < names.length; k++) {
      this.#firstWord[k] = words.length
      const name = Buffer.from(names[k]!, 'latin1')
      if (name.length < 4) {
        let word = 0
        for (let i = 0; i < name.length; i++) word |= name[i]! << (8 * i)
        words.push(word)
        continue
      }
      for (let i = 0; i < name.length - 4; i += 4) words.push(name.readInt32LE(i))
      words.push(name.readInt32LE(name.length - 4))
    }
    this.#words = Int32Array.from(words)
  }

  /** Whether name `k`, `length` bytes long, is at `pos` in `bytes` (the caller checked that it fits). */
  matches (bytes: DataView, pos: number, k: number, length: number): boolean {
    const words = this.#words
    let w = this.#firstWord[k]!
    if (length < 4) {
      let word = 0
      for (let i = 0; i < length; i++) word |= bytes.getUint8(pos + i) << (8 * i)
      return word === words[w]
    }
    const last = pos + length - 4
    for (let i = pos; i < last; i += 4) if (bytes.getInt32(i, true) !== words[w++]) return false
    return bytes.getInt32(last, true) === words[w]
  }
}

/**
 * Flat params whose values are not decoded: `[name0, at0, name1, at1, ...]`, `at` being where the
 * pair starts in the text (paramValue decodes its value from there).
 */
export type ParamNames = Array<string | number>

/**
 * decodeParamsText without the values (the same pairs, checks and errors): the default mode's main
 * thread routes a request on a few values and hands the text to a thread, which decodes it all. The
 * strings of the values it never read were a third of what it allocated per request.
 */
export function decodeParamNames (text: string, out: ParamNames, maxPairs: number = Infinity): void {
  decodeText(text, out, out.length, maxPairs, false, null, null)
}

/** The value of the pair at `at` in `text`, which decodeParamNames has checked. */
export function paramValue (text: string, at: number): string {
  const valueLenAt = at + lengthWidth(text, at)
  const start = valueLenAt + lengthWidth(text, valueLenAt) + lengthAt(text, at)
  return text.slice(start, start + lengthAt(text, valueLenAt))
}

/** A length's size in chars (bytes): 4 when its high bit is set, else 1. */
function lengthWidth (text: string, pos: number): number {
  return text.charCodeAt(pos) > 0x7f ? 4 : 1
}

function lengthAt (text: string, pos: number): number {
  const b = text.charCodeAt(pos)
  return b > 0x7f ? ((b & 0x7f) << 24) | (text.charCodeAt(pos + 1) << 16) | (text.charCodeAt(pos + 2) << 8) | text.charCodeAt(pos + 3) : b
}

/** Writes the pairs at out[start], out[start + 1]..., then cuts `out` after the last (it may be longer: decodeExpected). */
function decodeText (text: string, out: ParamNames, start: number, maxPairs: number, values: boolean, expected: ExpectedNames | null, bytes: DataView | null): void {
  const len = text.length
  const names = expected === null ? NO_NAMES : expected.names
  let i = start
  let pos = 0
  while (pos < len) {
    const at = pos
    let nameLen = text.charCodeAt(pos)
    if (nameLen > 0x7f) {
      if (len - pos < 4) fail(out, start, `name length truncated at byte ${at}`)
      nameLen = ((nameLen & 0x7f) << 24) | (text.charCodeAt(pos + 1) << 16) | (text.charCodeAt(pos + 2) << 8) | text.charCodeAt(pos + 3)
      pos += 4
    } else {
      pos += 1
    }
    if (pos === len) fail(out, start, `value length missing at byte ${pos}`)
    let valueLen = text.charCodeAt(pos)
    if (valueLen > 0x7f) {
      if (len - pos < 4) fail(out, start, `value length truncated at byte ${pos}`)
      valueLen = ((valueLen & 0x7f) << 24) | (text.charCodeAt(pos + 1) << 16) | (text.charCodeAt(pos + 2) << 8) | text.charCodeAt(pos + 3)
      pos += 4
    } else {
      pos += 1
    }
    if (nameLen === 0) fail(out, start, `empty name at byte ${at}`)
    // Compare against what is left (no addition that could exceed the record): spec §3.4 lengths are 31-bit.
    if (nameLen > len - pos || valueLen > len - pos - nameLen) {
      fail(out, start, `pair at byte ${at} (name ${nameLen} bytes, value ${valueLen} bytes) runs past the end (${len} bytes)`)
    }
    if (i >= maxPairs * 2) fail(out, start, `more than ${maxPairs} pairs`)
    const k = (i - start) >> 1
    let name = names[k]
    if (name === undefined || name.length !== nameLen || !expected!.matches(bytes!, pos, k, nameLen)) {
      name = text.slice(pos, pos + nameLen)
      // A NUL in a name would truncate it in C consumers: reject, like php's fcgi_get_params.
      if (name.indexOf('\0') !== -1) fail(out, start, `NUL byte in name at byte ${pos}`)
    }
    pos += nameLen
    out[i] = name
    out[i + 1] = values ? text.slice(pos, pos + valueLen) : at
    i += 2
    pos += valueLen
  }
  if (out.length !== i) out.length = i
}

const NO_NAMES: readonly string[] = []

/** Exact size of `encodeParams(pairs)`. */
export function encodedParamsLength (pairs: ParamPairs): number {
  return flatLength(toFlat(pairs))
}

/**
 * Encodes pairs as spec §3.4 bytes, each string as latin1. For tests, the client and GET_VALUES_RESULT,
 * not the server's hot path. Throws RangeError on a char above U+00FF, an empty name or a NUL in a name
 * (we never produce what decodeParams rejects).
 */
export function encodeParams (pairs: ParamPairs): Buffer {
  const flat = toFlat(pairs)
  const buf = Buffer.allocUnsafe(flatLength(flat))
  let pos = 0
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!
    const value = flat[i + 1]!
    pos = writeLength(buf, pos, name.length)
    pos = writeLength(buf, pos, value.length)
    pos += buf.write(name, pos, 'latin1')
    pos += buf.write(value, pos, 'latin1')
  }
  return buf
}

function toFlat (pairs: ParamPairs): readonly string[] {
  let flat: readonly string[]
  if (Array.isArray(pairs) && (pairs.length === 0 || typeof pairs[0] === 'string')) {
    flat = pairs as readonly string[]
    if (flat.length % 2 !== 0) throw new RangeError('flat params need an even number of strings')
  } else {
    const acc: string[] = []
    for (const [name, value] of pairs as Iterable<readonly [string, string]>) acc.push(name, value)
    flat = acc
  }
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!
    const value = flat[i + 1]!
    if (typeof name !== 'string' || typeof value !== 'string') throw new TypeError('params must be strings')
    if (name.length === 0) throw new RangeError('a param name cannot be empty')
    if (name.includes('\0')) throw new RangeError(`param name ${JSON.stringify(name)} contains a NUL byte`)
    if (NON_LATIN1.test(name) || NON_LATIN1.test(value)) {
      throw new RangeError(`param ${JSON.stringify(name)} has a character above U+00FF (encode to bytes first)`)
    }
    if (name.length > MAX_PARAM_LEN || value.length > MAX_PARAM_LEN) throw new RangeError('param too long')
  }
  return flat
}

function flatLength (flat: readonly string[]): number {
  let n = 0
  for (let i = 0; i < flat.length; i++) {
    const len = flat[i]!.length
    n += (len > 127 ? 4 : 1) + len
  }
  return n
}

function writeLength (buf: Buffer, pos: number, len: number): number {
  if (len < 128) {
    buf[pos] = len
    return pos + 1
  }
  buf.writeUInt32BE((len | 0x80000000) >>> 0, pos)
  return pos + 4
}

function latin1View (content: Uint8Array): Buffer {
  return Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength)
}

function fail (out: ParamNames, start: number, why: string): never {
  out.length = start
  throw new ProtocolError('FPM_ERR_PROTOCOL_PARAMS', `malformed FastCGI params: ${why}`)
}
