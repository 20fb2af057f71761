// A params shape against a plain scan of the params: for any list of names (duplicates, HTTP_*
// headers, the CONTENT_* pairs, names it does not read), the positions it keeps are those of the
// last occurrence of each name, and what the server and the Request read through it are the values
// of the request at hand, also when the shape was made by an earlier request with other values.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { expectedNames, shapeOf, valueAt, type ParamsShape } from '../../../src/common/params-shape.ts'
import { cgiRequestParts } from '../../../src/worker/cgi-request.ts'
import { decodeExpected, decodeParamsText, encodeParams, paramsText } from '../../../src/fastcgi/index.ts'

const READ: Record<string, keyof ParamsShape> = {
  REQUEST_URI: 'requestUri',
  SCRIPT_NAME: 'scriptName',
  QUERY_STRING: 'queryString',
  SCRIPT_FILENAME: 'scriptFilename',
  PATH_TRANSLATED: 'pathTranslated',
  CONTENT_LENGTH: 'contentLength',
  CONTENT_TYPE: 'contentType',
  HTTPS: 'https',
  PATH_INFO: 'pathInfo',
  SERVER_NAME: 'serverName',
  SERVER_PORT: 'serverPort',
  REQUEST_SCHEME: 'requestScheme',
  HTTP_HOST: 'httpHost'
}

// Few names, so that lists repeat, names repeat within a list, and lengths collide.
const nameArb = fc.constantFrom(
  ...Object.keys(READ), 'REQUEST_METHOD', 'HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH', 'HTTP_X_A_B', 'HTTP_ACCEPT',
  'HTTP_', 'HTTPX', 'DOCUMENT_ROOT', 'SERVER_SOFTWARE', 'REMOTE_ADDR', '__proto__', 'constructor', '0'
)
const valueArb = fc.oneof(fc.constantFrom('', 'GET', 'POST', '/a?b', 'h:1', 'on', '12'), fc.string({ maxLength: 6 }))

function flat (names: readonly string[], values: readonly string[]): string[] {
  const params: string[] = []
  names.forEach((name, i) => params.push(name, values[i] ?? ''))
  return params
}

/** The plain scan: index of the value of the last `name`, -1 when absent. */
function lastAt (params: readonly string[], name: string): number {
  let at = -1
  for (let i = 0; i + 1 < params.length; i += 2) if (params[i] === name) at = i + 1
  return at
}

function checkShape (params: string[]): void {
  const shape = shapeOf(params)
  assert.deepEqual(shape.names, params.filter((_, i) => i % 2 === 0))
  for (const [name, field] of Object.entries(READ)) assert.equal(shape[field], lastAt(params, name), name)
  assert.deepEqual(shape.requestMethods, params.flatMap((p, i) => i % 2 === 0 && p === 'REQUEST_METHOD' ? [i + 1] : []))

  // The Request's parts: headers in param order, then CONTENT_*; the last method that is not empty.
  const parts = cgiRequestParts(params)
  const headers: string[] = []
  for (let i = 0; i + 1 < params.length; i += 2) {
    const name = params[i]!
    if (name.length > 5 && name.startsWith('HTTP_') && name !== 'HTTP_CONTENT_TYPE' && name !== 'HTTP_CONTENT_LENGTH') {
      headers.push(name.slice(5).toLowerCase().replaceAll('_', '-'), params[i + 1]!)
    }
  }
  const contentType = valueAt(params, lastAt(params, 'CONTENT_TYPE'), '')
  const contentLength = valueAt(params, lastAt(params, 'CONTENT_LENGTH'), '')
  if (contentType !== '') headers.push('content-type', contentType)
  if (contentLength !== '') headers.push('content-length', contentLength)
  assert.deepEqual(parts.headers, headers)
  const methods = params.filter((p, i) => i % 2 === 1 && params[i - 1] === 'REQUEST_METHOD' && p !== '')
  assert.equal(parts.method, methods.at(-1) ?? 'GET')
}

describe('params shape', () => {
  it('keeps the last position of each name it reads, and reads the values of the request at hand', () => {
    fc.assert(fc.property(fc.array(nameArb, { maxLength: 10 }), fc.array(valueArb, { minLength: 10, maxLength: 10 }),
      fc.array(valueArb, { minLength: 10, maxLength: 10 }), (names, first, second) => {
        checkShape(flat(names, first))
        // The same names again: the shape made above, the values of this request.
        assert.equal(shapeOf(flat(names, second)), shapeOf(flat(names, first)))
        checkShape(flat(names, second))
      }), { numRuns: 500 })
  })

  it('is found again for the same names in the same order, decoded from the wire or not', () => {
    const names = ['SCRIPT_FILENAME', 'REQUEST_METHOD', 'REQUEST_URI', 'HTTP_HOST']
    const decoded: string[] = []
    decodeParamsText(paramsText(encodeParams(flat(names, ['/s.mjs', 'GET', '/x', 'h']))), decoded)
    const shape = shapeOf(decoded)
    assert.equal(shapeOf(flat(names, ['/t.mjs', 'POST', '/y', 'i'])), shape)
    assert.notEqual(shapeOf(flat([...names].reverse(), ['a', 'b', 'c', 'd'])), shape)
    assert.notEqual(shapeOf(flat(names.slice(1), ['a', 'b', 'c'])), shape)
    // Kept among the most recent 16: after 16 other lists, the same names make a new shape.
    assert.equal(shapeOf(decoded), shape)
    for (let i = 0; i < 16; i++) shapeOf(flat([`X_${i}`], ['v']))
    const again = shapeOf(decoded)
    assert.notEqual(again, shape)
    assert.deepEqual(again.names, shape.names)
  })

  it('offers the names of the shape found last to the next decode, once that shape is seen twice', () => {
    const names = ['REQUEST_URI', 'HTTP_X_ONE', 'SCRIPT_FILENAME_OF_SOME_LENGTH']
    const other = ['REQUEST_URI', 'HTTP_X_TWO']
    shapeOf(flat(other, ['/a', '1']))
    shapeOf(flat(other, ['/b', '2']))
    assert.deepEqual(expectedNames()?.names, other)
    // a list seen once is not offered (a client whose headers vary makes a shape per request)
    const once = shapeOf(flat(names, ['/x', 'y', 'z']))
    assert.equal(once.expected, null)
    assert.equal(expectedNames(), null)
    shapeOf(flat(names, ['/x2', 'y2', 'z2']))
    assert.deepEqual(expectedNames()?.names, names)
    // decoded with them: the same pairs as without
    const bytes = encodeParams(flat(names, ['/q', 'r', 's']))
    const hinted = decodeExpected(paramsText(bytes), new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), expectedNames()!, true)
    assert.deepEqual(hinted, flat(names, ['/q', 'r', 's']))
    assert.equal(shapeOf(hinted), shapeOf(flat(names, ['/x', 'y', 'z'])))
  })
})
