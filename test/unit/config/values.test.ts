// Unit tests of the value parsers (src/config/values.ts): php's integer, boolean and time rules,
// node-fpm's sizes and ms, octal modes, $pool expansion, and the listen address forms of
// php-fpm.md §2.2 with php's messages.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  expandPool, formatSize, formatTime, parseBoolean, parseInteger, parseList, parseListenAddress, parseOctalMode,
  parseSize, parseTime, UNIX_PATH_MAX
} from '../../../src/config/values.ts'
import type { Parsed } from '../../../src/config/values.ts'

function value<T> (p: Parsed<T>): T {
  assert.ok(p.ok, `expected a value, got ${p.ok ? '' : p.reason}`)
  return p.value
}

function reason<T> (p: Parsed<T>): string {
  assert.ok(!p.ok, 'expected a failure')
  return p.reason
}

describe('parseInteger', () => {
  for (const [raw, n] of [['0', 0], ['42', 42], ['-1', -1], ['007', 7]] as const) {
    it(`accepts ${raw}`, () => assert.equal(value(parseInteger(raw)), n))
  }
  for (const raw of ['', '-', '1.5', '1e3', ' 1', 'abc', '12a', '+3', '99999999999999999999']) {
    it(`refuses '${raw}' with php's message`, () => {
      assert.equal(reason(parseInteger(raw)), 'is not a valid number (greater or equal than zero)')
    })
  }
})

describe('parseBoolean', () => {
  for (const raw of ['1', 'yes', 'On', 'TRUE']) it(`${raw} is true`, () => assert.equal(value(parseBoolean(raw)), true))
  for (const raw of ['', '0', 'no', 'Off', 'false', 'none', 'NULL']) it(`'${raw}' is false`, () => assert.equal(value(parseBoolean(raw)), false))
  for (const raw of ['2', 'y', 'enabled', '-1']) it(`refuses ${raw}`, () => assert.equal(reason(parseBoolean(raw)), 'invalid boolean value'))
})

describe('parseTime (milliseconds)', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['10', 10_000], ['10s', 10_000], ['2m', 120_000], ['1h', 3_600_000], ['1d', 86_400_000],
    ['250ms', 250], ['3M', 180_000], ['5S', 5000]
  ]
  for (const [raw, ms] of cases) it(`${raw} = ${ms} ms`, () => assert.equal(value(parseTime(raw)), ms))
  it('refuses an empty value', () => assert.equal(reason(parseTime('')), 'invalid time value'))
  for (const raw of ['5x', '10w', '1us']) {
    it(`refuses ${raw}: unknown suffix`, () => assert.equal(reason(parseTime(raw)), 'unknown suffix used in time value'))
  }
  // php's atoi would read these as 60 s, 0 s and -5 s; we refuse them.
  for (const raw of ['1.5m', 'abc', '-5', 's']) {
    it(`refuses ${raw}`, () => assert.equal(reason(parseTime(raw)), 'invalid time value'))
  }
  it('formats whole seconds as Ns and the rest as Nms', () => {
    assert.equal(formatTime(0), '0s')
    assert.equal(formatTime(120_000), '120s')
    assert.equal(formatTime(1500), '1500ms')
  })
})

describe('parseSize (bytes)', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['1000', 1000], ['128K', 131_072], ['128k', 131_072], ['8M', 8_388_608], ['2g', 2_147_483_648], ['16 M', 16_777_216]
  ]
  for (const [raw, bytes] of cases) it(`${raw} = ${bytes}`, () => assert.equal(value(parseSize(raw)), bytes))
  for (const raw of ['', '-1', '1.5M', 'M', 'big']) it(`refuses '${raw}'`, () => assert.equal(reason(parseSize(raw)), 'invalid size value'))
  for (const raw of ['12X', '1KB', '3T']) it(`refuses ${raw}: unknown suffix`, () => assert.equal(reason(parseSize(raw)), 'unknown suffix used in size value'))
  it('formats in the largest exact unit', () => {
    assert.equal(formatSize(0), '0')
    assert.equal(formatSize(131_072), '128K')
    assert.equal(formatSize(8_388_608), '8M')
    assert.equal(formatSize(1024 ** 3), '1G')
    assert.equal(formatSize(1000), '1000')
  })
})

describe('parseOctalMode', () => {
  it('accepts 3 and 4 digits', () => {
    assert.equal(value(parseOctalMode('0660')), 0o660)
    assert.equal(value(parseOctalMode('660')), 0o660)
    assert.equal(value(parseOctalMode('1777')), 0o1777)
  })
  for (const raw of ['', '0999', 'rw-rw----', '0x1b6', '00660']) {
    it(`refuses '${raw}'`, () => assert.equal(reason(parseOctalMode(raw)), 'invalid octal mode'))
  }
})

describe('parseList', () => {
  it('splits on commas and trims', () => assert.deepEqual(parseList('127.0.0.1, ::1,,', 'comma'), ['127.0.0.1', '::1']))
  it('splits on spaces and tabs', () => assert.deepEqual(parseList(' .js\t.mjs  .ts ', 'space'), ['.js', '.mjs', '.ts']))
  it('gives an empty list for an empty value', () => assert.deepEqual(parseList('', 'space'), []))
})

describe('expandPool', () => {
  it('replaces every $pool', () => assert.equal(value(expandPool('/run/$pool/$pool.sock', 'www')), '/run/www/www.sock'))
  it('leaves values without $pool alone, also in [global]', () => assert.equal(value(expandPool('/x', null)), '/x'))
  it("refuses $pool outside a pool with php's message", () => {
    assert.equal(reason(expandPool('$pool.pid', null)), "Can't use '$pool' when the pool is not defined")
  })
})

describe('parseListenAddress', () => {
  const accepted: Array<[string, unknown]> = [
    ['127.0.0.1:9000', { kind: 'tcp', host: '127.0.0.1', port: 9000 }],
    ['9000', { kind: 'tcp', host: null, port: 9000 }],
    ['[::]:9000', { kind: 'tcp', host: '::', port: 9000 }],
    ['[::1]:9001', { kind: 'tcp', host: '::1', port: 9001 }],
    ['::1:9001', { kind: 'tcp', host: '::1', port: 9001 }],
    ['localhost:65535', { kind: 'tcp', host: 'localhost', port: 65535 }],
    ['/run/php/www.sock', { kind: 'unix', path: '/run/php/www.sock' }],
    ['run/www.sock', { kind: 'unix', path: '/srv/fpm/run/www.sock' }],
    ['www.sock', { kind: 'unix', path: '/srv/fpm/www.sock' }],
    ['\\\\.\\pipe\\node-fpm', { kind: 'pipe', path: '\\\\.\\pipe\\node-fpm' }],
    ['\\\\?\\pipe\\x', { kind: 'pipe', path: '\\\\?\\pipe\\x' }]
  ]
  for (const [raw, expected] of accepted) {
    it(`parses ${raw}`, () => assert.deepEqual(parseListenAddress(raw, '/srv/fpm'), expected))
  }
  const refused: Array<[string, string]> = [
    ['127.0.0.1:69002', "invalid port value '69002'"],
    ['0', "invalid port value '0'"],
    ['127.0.0.1:0', "invalid port value '0'"],
    ['127.0.0.1:', "invalid port value ''"],
    ['127.0.0.1:90a', "invalid port value '90a'"],
    ['[::]:-1', "invalid port value '-1'"],
    [':9000', "invalid listen address ':9000': missing host before ':'"]
  ]
  for (const [raw, message] of refused) {
    it(`refuses ${raw}`, () => {
      assert.throws(() => parseListenAddress(raw, '/srv'), { code: 'FPM_ERR_LISTEN_ADDRESS', message })
    })
  }
  it('refuses a unix socket path of 108 bytes or more (sun_path), counting the resolved path', () => {
    const ok = '/' + 'a'.repeat(UNIX_PATH_MAX - 2)
    assert.equal(parseListenAddress(ok, '/').kind, 'unix')
    const long = '/' + 'a'.repeat(UNIX_PATH_MAX - 1)
    assert.throws(() => parseListenAddress(long, '/'), {
      message: `cannot bind to UNIX socket '${long}' as path is too long (found length: 108, maximal length: 108)`
    })
    const relative = 'b'.repeat(100)
    assert.throws(() => parseListenAddress(relative, '/srv/fpm'), /found length: 109, maximal length: 108/)
  })
})
