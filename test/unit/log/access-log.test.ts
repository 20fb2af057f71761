// AccessLog and AccessRecord (src/log/access-log.ts) without a server: what each request fact
// becomes in the line, as php-fpm's fpm_log.c makes it (status from the CGI head, %{Name}o's
// matching, %u from Basic auth, %l as atol, %R from the peer), the 499 of an aborted request, php's
// access.suppress_path rules, the 1024-byte cut and its notice, bytes written as they came, and
// which formats make the threads measure %C and %M.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig } from '../../../src/config/load.ts'
import type { PoolConfig } from '../../../src/config/types.ts'
import { AccessLog, accessLogMeasuresUsage } from '../../../src/log/access-log.ts'
import type { AccessRecord } from '../../../src/log/access-log.ts'
import type { WorkerResult } from '../../../src/common/messages.ts'
import { decodeParamNames, encodeParams, paramsText, type ParamNames } from '../../../src/fastcgi/index.ts'

let dir: string
let n = 0

function poolConfig (lines: string[]): PoolConfig {
  const file = `fpm${++n}.conf`
  writeFileSync(join(dir, file), ['[www]', 'listen = 127.0.0.1:9999', 'pm = static', 'pm.max_children = 1', `root = ${dir}`, `access.log = ${dir}/access${n}.log`, ...lines].join('\n') + '\n')
  const r = loadConfig({ cwd: dir, configFile: file, env: {} })
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'))
  const p = r.config.pools[0]
  assert.ok(p)
  return p
}

interface Opened { log: AccessLog, notices: string[], read: () => Promise<string[]>, readBytes: () => Promise<Buffer> }

function open (format: string | null, extra: string[] = []): Opened {
  const notices: string[] = []
  const logger = pino({ level: 'debug' }, { write (s: string) { notices.push((JSON.parse(s) as { msg: string }).msg) } })
  const config = poolConfig([...(format === null ? [] : [`access.format = "${format.replaceAll('"', '\\"')}"`]), ...extra])
  const log = AccessLog.open(config, logger)
  assert.ok(log !== null)
  const readBytes = async (): Promise<Buffer> => { await log.file.flush(); return readFileSync(log.file.path) }
  return { log, notices, readBytes, read: async () => (await readBytes()).toString('latin1').split('\n').slice(0, -1) }
}

const GET = ['REQUEST_METHOD', 'GET', 'SCRIPT_NAME', '/index.mjs', 'QUERY_STRING', '', 'CONTENT_LENGTH', '']

/** A request: params, then the head sent (or none), the worker's result, the end. */
function request (log: AccessLog, opts: { params?: string[] | null, head?: string | null, result?: WorkerResult | null, peer?: string, script?: string, threadId?: number }): AccessRecord {
  const r = log.begin(opts.peer ?? '127.0.0.1:41000')
  if (opts.params !== null) r.setParams(opts.params ?? GET, '')
  if (opts.head !== undefined && opts.head !== null) r.sent(opts.head)
  if (opts.result !== undefined) r.settled(opts.result)
  r.finish({ script: opts.script ?? '/srv/index.mjs', threadId: opts.threadId ?? 7 })
  return r
}

describe('AccessLog', () => {
  before(() => { dir = mkdtempSync(join(tmpdir(), 'node-fpm-access-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('%s: the Status line of the head sent, 200 without one; 499 when none was made; the unsent head of an aborted request', async () => {
    const { log, read } = open('%s')
    request(log, { head: 'Content-Type: text/plain\r\n\r\n' })
    request(log, { head: 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n' })
    request(log, { head: 'X-A: 1\r\nStatus: 302 Found\r\n\r\n' })
    request(log, { head: null })
    request(log, { head: null, result: { response: { head: 'Status: 201 Created\r\n\r\n', body: null }, error: null } })
    // The head sent counts, not a later one.
    const r = log.begin('127.0.0.1:1')
    r.setParams(GET, '')
    r.sent('Status: 503 Service Unavailable\r\n\r\n')
    r.sent('Status: 200 OK\r\n\r\n')
    r.finish({ script: '', threadId: 0 })
    assert.deepEqual(await read(), ['200', '404', '302', '499', '201', '503'])
  })

  it("%{Name}o: php's match (case-sensitive name, ': ', a value), never the Status line", async () => {
    const { log, read } = open('%{Content-Type}o|%{content-type}o|%{X-Empty}o|%{Status}o|%{Set-Cookie}o|%{X-Missing}o')
    request(log, { head: 'Status: 404 Not Found\r\nContent-Type: text/html\r\nX-Empty: \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n' })
    request(log, { head: null })
    assert.deepEqual(await read(), ['text/html|-|-|-|a=1|-', '-|-|-|-|-|-'])
  })

  it('%u: the user of a Basic Authorization header (any case of "Basic"), else empty', async () => {
    const { log, read } = open('[%u]')
    const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')
    for (const auth of [`Basic ${b64('alice:pw')}`, `basic ${b64('bob:a:b')}`, `Basic ${b64('no-colon')}`, 'Digest username="x"', `Basic ${b64(':empty-user')}`, null]) {
      request(log, { params: auth === null ? GET : [...GET, 'HTTP_AUTHORIZATION', auth] })
    }
    assert.deepEqual(await read(), ['[alice]', '[bob]', '[]', '[]', '[]', '[]'])
  })

  it("%l is php's atol(CONTENT_LENGTH); %m %r %q %Q %e from the params (the last of a repeated name)", async () => {
    const { log, read } = open('%l %m %r%Q%q %{X}e %{NONE}e')
    for (const cl of ['12', '12abc', ' 7', 'abc', '']) request(log, { params: [...GET, 'CONTENT_LENGTH', cl, 'X', 'first', 'X', 'last'] })
    request(log, { params: ['REQUEST_METHOD', 'POST', 'SCRIPT_NAME', '/a', 'QUERY_STRING', 'x=1'] })
    assert.deepEqual(await read(), [
      '12 GET /index.mjs last -', '12 GET /index.mjs last -', '7 GET /index.mjs last -', '0 GET /index.mjs last -', '0 GET /index.mjs last -',
      '0 POST /a?x=1 - -'
    ])
  })

  it("params as names only, their values left in the text (the default mode's main thread): the same lines as decoded pairs", async () => {
    const format = '%l %m %r%Q%q %{X}e %{NONE}e %{LONG_VALUE}e %{A_LONG_NAME_' + 'N'.repeat(100) + '}e|%f'
    const lists = [
      [...GET, 'CONTENT_LENGTH', '12abc', 'X', 'first', 'X', 'last', 'LONG_VALUE', 'v'.repeat(300)],
      ['REQUEST_METHOD', 'POST', 'SCRIPT_NAME', '/a', 'QUERY_STRING', 'x=1', `A_LONG_NAME_${'N'.repeat(100)}`, 'é\u00ff', 'SCRIPT_FILENAME', '/srv/a.mjs'],
      ['X', '']
    ]
    const flat = open(format)
    const names = open(format)
    for (const params of lists) {
      request(flat.log, { params, script: '' })
      const text = paramsText(encodeParams(params))
      const decoded: ParamNames = []
      decodeParamNames(text, decoded)
      assert.ok(decoded.some((v) => typeof v === 'number'), 'the values are left in the text')
      const r = names.log.begin('127.0.0.1:41000')
      r.setParams(decoded, text)
      r.finish({ script: '', threadId: 7 })
    }
    const expected = await flat.read()
    assert.equal(expected.length, 3)
    assert.ok(expected[0]!.includes('v'.repeat(300)) && expected[1]!.includes('é\u00ff|/srv/a.mjs'), expected.join('\n'))
    assert.deepEqual(await names.read(), expected)
  })

  it('%R: the FastCGI peer (IPv4-mapped shown as IPv4, - for a unix socket); %p the thread; %f the script, else SCRIPT_FILENAME', async () => {
    const { log, read } = open('%R %p %f')
    request(log, { peer: '10.1.2.3:5000' })
    request(log, { peer: '::1:5000', threadId: 3 })
    request(log, { peer: '::ffff:192.168.0.9:80' })
    request(log, { peer: 'unix', threadId: 0, script: '', params: [...GET, 'SCRIPT_FILENAME', '/srv/missing.mjs'] })
    request(log, { threadId: 0, script: '' })
    assert.deepEqual(await read(), ['10.1.2.3 7 /srv/index.mjs', '::1 3 /srv/index.mjs', '192.168.0.9 7 /srv/index.mjs', '- 0 /srv/missing.mjs', '127.0.0.1 0 -'])
  })

  it('%C and %M from the worker usage: CPU time over %d in percent, heap bytes; 0 without usage', async () => {
    const { log, read } = open('%{micro}d %C %{user}C %{system}C %M %{kilo}M')
    request(log, { head: '\r\n', result: { response: null, error: null, usage: { cpuUserUs: 3000, cpuSystemUs: 1000, heapBytes: 5 * 1048576 + 1 } } })
    request(log, { head: '\r\n', result: { response: null, error: null } })
    const [withUsage, without] = await read()
    const [us, C, Cu, Cs, M, kM] = (withUsage ?? '').split(' ')
    const d = Number(us)
    assert.ok(d > 0)
    assert.equal(C, (4000 / d * 100).toFixed(2))
    assert.equal(Cu, (3000 / d * 100).toFixed(2))
    assert.equal(Cs, (1000 / d * 100).toFixed(2))
    assert.deepEqual([M, kM], [String(5 * 1048576 + 1), '5120'])
    assert.match(without ?? '', /^\d+ 0\.00 0\.00 0\.00 0 0$/)
  })

  it('one line per request: finish() twice writes once; a request with neither params nor a response writes none', async () => {
    const { log, read } = open('%m %s')
    const r = request(log, { head: '\r\n' })
    r.finish({ script: '', threadId: 0 })
    request(log, { params: null, head: null }) // the connection broke during the params
    request(log, { params: null, head: 'Status: 431 Request Header Fields Too Large\r\n\r\n' }) // params too large
    assert.deepEqual(await read(), ['GET 200', '- 431'])
  })

  it('access.suppress_path: php 8.2\'s rules', async () => {
    const { log, read } = open('%m %r%Q%q %s %l', ['access.suppress_path[] = /health', 'access.suppress_path[] = /é'])
    const req = (method: string, uri: string, status: number, opts: { query?: string, contentLength?: string } = {}): void => {
      request(log, {
        params: ['REQUEST_METHOD', method, 'SCRIPT_NAME', uri, 'QUERY_STRING', opts.query ?? '', 'CONTENT_LENGTH', opts.contentLength ?? ''],
        head: status === 200 ? '\r\n' : `Status: ${status}\r\n\r\n`
      })
    }
    req('GET', '/health', 200) // suppressed
    req('HEAD', '/health', 204) // suppressed
    req('GET', '/health', 299) // suppressed
    req('GET', '/health', 0 as number) // a head with Status: 0 -> not 2xx
    req('GET', '/health', 300)
    req('GET', '/health', 199)
    req('POST', '/health', 200)
    req('GET', '/health', 200, { query: 'a' })
    req('GET', '/health', 200, { contentLength: '1' })
    req('GET', '/health', 200, { contentLength: '0' }) // suppressed
    req('GET', '/healthz', 200)
    req('GET', '/\xc3\xa9', 200) // the UTF-8 bytes of /é: suppressed
    request(log, { params: ['REQUEST_METHOD', 'GET', 'SCRIPT_NAME', '/health'], head: null }) // aborted: 499
    assert.deepEqual(await read(), [
      'GET /health 0 0', 'GET /health 300 0', 'GET /health 199 0', 'POST /health 200 0', 'GET /health?a 200 0',
      'GET /health 200 1', 'GET /healthz 200 0', 'GET /health 499 0'
    ])
  })

  it('a line longer than 1024 bytes is cut there, with php\'s notice (once); an empty line is not written', async () => {
    const { log, read, notices } = open('%{X}e')
    request(log, { params: [...GET, 'X', 'y'.repeat(3000)] })
    request(log, { params: [...GET, 'X', 'z'.repeat(1100)] })
    request(log, { params: [...GET, 'X', ''] })
    request(log, { params: [...GET, 'X', 'short'] })
    assert.deepEqual(await read(), ['y'.repeat(1024), 'z'.repeat(1024), 'short'])
    assert.deepEqual(notices, ['the log buffer is full (1024). The access log request has been truncated.'])
  })

  it('bytes are written as they came: params as sent, the format and file paths as UTF-8', async () => {
    const { log, readBytes } = open('→ %{X}e %r %f')
    request(log, { params: ['SCRIPT_NAME', '/caf\xc3\xa9', 'X', '\xff\x00'], script: '/srv/thé/€.mjs' })
    assert.deepEqual(await readBytes(), Buffer.concat([Buffer.from('→ ', 'utf8'), Buffer.from([0xff, 0x00]), Buffer.from(' /café /srv/thé/€.mjs\n', 'utf8')]))
  })

  it("the default format is php's; no access.log: no AccessLog", async () => {
    const { log, read } = open(null)
    request(log, { peer: '127.0.0.1:9', head: 'Status: 404 Not Found\r\n\r\n' })
    const [line] = await read()
    assert.match(line ?? '', /^127\.0\.0\.1 - {2}\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4} "GET \/index\.mjs" 404$/)
    const config = poolConfig([])
    assert.equal(AccessLog.open({ ...config, access: { ...config.access, log: null } }, pino({ level: 'silent' })), null)
  })

  it('accessLogMeasuresUsage: only a format with %C or %M (in any form) makes the threads measure', () => {
    const yes = ['%C', '%{user}C', '%M', '%{kilo}M', 'a %{x}{total}C b', '%%%C']
    const no = ['%R - %u %t "%m %r" %s', '%%C', '%%M', '%{C}e', '%{M}o %d', '%', '%{']
    for (const format of yes) assert.equal(accessLogMeasuresUsage({ log: '/x', format, suppressPaths: [] }), true, format)
    for (const format of no) assert.equal(accessLogMeasuresUsage({ log: '/x', format, suppressPaths: [] }), false, format)
    assert.equal(accessLogMeasuresUsage({ log: null, format: '%C', suppressPaths: [] }), false)
  })
})
