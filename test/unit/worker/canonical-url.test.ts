// The URL fast path (src/worker/canonical-url.ts) against the WHATWG parser itself: whenever it
// says "already canonical", the parser must serialize the URL to the very same string. Generated
// hosts, ports and targets lean towards what changes a URL (upper case, IPv4 forms, default ports,
// dot segments, %2e, quotes, brackets, bytes >= 0x80); the common shapes must take the fast path.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isCanonicalHttpUrl } from '../../../src/worker/canonical-url.ts'

function parsed (url: string): string | undefined {
  return URL.parse(url)?.href
}

const schemeArb = fc.constantFrom('http', 'https')
const hostArb = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9.\-_]{0,12}$/),
  fc.constantFrom('localhost', 'example.com', 'Example.com', '127.0.0.1', '127.1', '0x7f.0.0.1', '010.0.0.1',
    '1.2.3.4.', '256.0.0.1', 'a..b', 'xn--nxasmq6b', 'xn--abc', 'a.xn--zz', '[::1]', 'host.1a', 'a.b.', '1.2.3',
    'www.example.org', '10.0.0.255', 'h\u00e9', 'a b', '%41'),
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }))
    .map((q) => q.join('.'))
)
const portArb = fc.oneof(
  fc.constant(''),
  fc.constantFrom(':80', ':443', ':8080', ':0', ':00', ':080', ':', ':65535', ':65536', ':99999', ':123456', ':1a'),
  fc.integer({ min: 0, max: 70000 }).map((n) => ':' + n)
)
const targetChar = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'Z', '0', '-', '_', '~', '/', '/', '.', '..', '?', '=', '&', '%', '%2e', '%2E', '%41', '%zz') },
  { weight: 4, arbitrary: fc.constantFrom("'", '"', '<', '>', '`', '{', '}', '^', '|', '[', ']', '\\', '#', ' ', '\t', ':', '@', '!', '$', '(', ')', '*', '+', ',', ';') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x2ff }).map((c) => String.fromCharCode(c)) }
)
const targetArb = fc.array(targetChar, { maxLength: 24 }).map((chars) => '/' + chars.join(''))

describe('isCanonicalHttpUrl', () => {
  it('says "canonical" only when the URL parser serializes the URL to the same string', () => {
    fc.assert(fc.property(schemeArb, hostArb, portArb, targetArb, (scheme, host, port, target) => {
      const url = scheme + '://' + host + port + target
      if (isCanonicalHttpUrl(scheme, host + port, target)) assert.equal(parsed(url), url)
    }), { numRuns: process.env.CI === 'true' ? 200_000 : 50_000 })
  })

  it('takes the fast path for the URLs requests usually have', () => {
    const common: Array<[string, string, string]> = [
      ['http', 'localhost', '/'],
      ['http', 'example.com', '/index.mjs'],
      ['https', 'www.example.org', '/api/v1/users/42?fields=name,email&sort=-created'],
      ['http', '127.0.0.1:8080', '/hello'],
      ['https', 'example.com:8443', '/a/b.c/d-e_f~g?x=1&y=%20z'],
      ['http', 'shop.example.com', '/search?q=caf%C3%A9&page=2'],
      ['http', 'example.com', "/o'brien"]
    ]
    for (const [scheme, authority, target] of common) {
      assert.equal(isCanonicalHttpUrl(scheme, authority, target), true, scheme + '://' + authority + target)
      assert.equal(parsed(scheme + '://' + authority + target), scheme + '://' + authority + target)
    }
  })

  it('leaves to the parser what it would change', () => {
    const changed: Array<[string, string, string]> = [
      ['http', 'Example.com', '/'], // lower-cased
      ['http', 'example.com:80', '/'], // default port dropped
      ['https', 'example.com:443', '/'],
      ['http', 'example.com:080', '/'], // leading zero
      ['http', '127.1', '/'], // IPv4 shorthand
      ['http', '0x7f.0.0.1', '/'],
      ['http', 'example.com', '/a/../b'], // dot segments
      ['http', 'example.com', '/a/./b'],
      ['http', 'example.com', '/a/%2e%2E/b'],
      ['http', 'example.com', '/a"b'], // percent-encoded by the parser
      ['http', 'example.com', "/a?b='c'"]
    ]
    for (const [scheme, authority, target] of changed) {
      const url = scheme + '://' + authority + target
      assert.notEqual(parsed(url), url, url)
      assert.equal(isCanonicalHttpUrl(scheme, authority, target), false, url)
    }
  })
})
