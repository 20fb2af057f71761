import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatClientAddress, parseClientAddress } from '../../../src/client/address.ts'

test('parseClientAddress: every accepted form', () => {
  const cases: Array<[string, unknown]> = [
    ['9000', { host: '127.0.0.1', port: 9000 }],
    ['127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['[fe80::1%eth0]:1', { host: 'fe80::1%eth0', port: 1 }],
    ['/run/php/fpm.sock', { path: '/run/php/fpm.sock' }],
    ['unix:/run/fpm.sock', { path: '/run/fpm.sock' }],
    ['unix:rel.sock', { path: 'rel.sock' }],
    ['./fpm.sock', { path: './fpm.sock' }],
    ['../fpm.sock', { path: '../fpm.sock' }],
    ['\\\\.\\pipe\\node-fpm', { path: '\\\\.\\pipe\\node-fpm' }],
    ['\\\\?\\pipe\\x', { path: '\\\\?\\pipe\\x' }],
    ['  9001 ', { host: '127.0.0.1', port: 9001 }]
  ]
  for (const [input, expected] of cases) assert.deepEqual(parseClientAddress(input), expected, input)
})

test('parseClientAddress: rejections name the problem (code FPM_ERR_CLIENT)', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty address/],
    ['0', /port 0 is out of range/],
    ['65536', /port 65536 is out of range/],
    ['host:', /'' is not a port number/],
    ['host:abc', /'abc' is not a port number/],
    [':9000', /empty host/],
    ['::1:9000', /IPv6 address must be written in brackets/],
    ['[::1]9000', /expected ':port' after '\]'/],
    ['[::1:9000', /missing '\]'/],
    ['[nope]:9000', /'nope' is not an IPv6 address/],
    ['*:9000', /listen address/],
    ['fpm.sock', /expected host:port/],
    ['unix:', /no socket path/]
  ]
  for (const [input, re] of cases) {
    assert.throws(() => parseClientAddress(input), (err: Error & { code?: string }) => err.code === 'FPM_ERR_CLIENT' && re.test(err.message), input)
  }
})

test('formatClientAddress', () => {
  assert.equal(formatClientAddress({ host: '::1', port: 9000 }), '[::1]:9000')
  assert.equal(formatClientAddress({ host: '127.0.0.1', port: 9000 }), '127.0.0.1:9000')
  assert.equal(formatClientAddress({ path: '/x.sock' }), '/x.sock')
})
