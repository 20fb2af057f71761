// The handler contract (README.md "Handlers"), end to end: the real node-fpm CLI serves
// test/fixtures/e2e-apps, and the project's FastCGI client talks to it directly (what nginx would
// send, without nginx). Each test names the README promise it checks.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import type { CgiParamsOptions, FcgiResponse } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm, tempDir } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const E2E = join(REPO, 'test/fixtures/e2e-apps')

// A second pool ("jail") has its own root, built in a temp dir: symlinks in and out of it.
const outside = tempDir()
const JAIL = join(outside, 'jail')

const CONFIG = `
[global]
error_log = stderr
log_level = notice

[e2e]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
env[MARK_FILE] = {{DIR}}/mark
env[E2E_POOL] = e2e-pool
env[OVERRIDE_ME] = from-pool

[jail]
listen = 127.0.0.1:{{PORT2}}
pm = static
pm.max_children = 1
root = ${JAIL}
`

let fpm: FpmHandle
let addr: string
let jailAddr: string

before(async () => {
  mkdirSync(JAIL)
  mkdirSync(join(outside, 'secret'))
  const handler = (name: string): string => `export default () => new Response(${JSON.stringify(name)})\n`
  writeFileSync(join(JAIL, 'inside.mjs'), handler('inside'))
  writeFileSync(join(outside, 'secret', 'secret.mjs'), handler('secret'))
  symlinkSync(join(JAIL, 'inside.mjs'), join(JAIL, 'alias.mjs')) // stays inside: allowed
  symlinkSync(join(outside, 'secret', 'secret.mjs'), join(JAIL, 'escape.mjs')) // file link out
  symlinkSync(join(outside, 'secret'), join(JAIL, 'linkdir')) // directory link out
  fpm = await startFpm(CONFIG, { root: E2E })
  addr = `127.0.0.1:${fpm.port}`
  jailAddr = `127.0.0.1:${fpm.port2}`
})

after(async () => {
  const code = await fpm?.stop()
  rmSync(outside, { recursive: true, force: true })
  assert.equal(code, 0, 'node-fpm exits 0 on SIGTERM')
})

function params (uri: string, opts: Partial<CgiParamsOptions> = {}): Record<string, string> {
  return buildCgiParams({ uri, documentRoot: E2E, ...opts })
}

async function get (uri: string, opts: Partial<CgiParamsOptions> = {}, body?: Uint8Array): Promise<FcgiResponse> {
  return await fcgiRequest(addr, { params: params(uri, opts), body }, { timeoutMs: 10_000 })
}

function header (res: FcgiResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1]
}

function headerValues (res: FcgiResponse, name: string): string[] {
  return res.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)
}

function json (res: FcgiResponse): Record<string, unknown> {
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>
}

async function waitForFile (file: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8')
      if (text !== '') return text
    }
    await sleep(20)
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`)
}

function logsSince (start: number): LogLine[] {
  return fpm.logs.slice(start)
}

test('hello: a default-exported { fetch } object answers 200 with its headers and body', async () => {
  const res = await get('/hello.mjs?x=1')
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'Hello, e2e! /hello.mjs\n')
  assert.equal(header(res, 'content-type'), 'text/plain; charset=utf-8')
  assert.equal(header(res, 'x-handler'), 'hello')
  assert.equal(res.stderr, '')
  assert.equal(res.appStatus, 0)
  assert.ok(!res.raw.toString('latin1').startsWith('Status:'), '200 is sent without a Status line')
})

test('a handler that returns a thenable (not a Promise): its Response, whether then() calls back later or at once', async () => {
  const later = await get('/thenable.mjs')
  assert.equal(later.status, 200)
  assert.equal(later.body.toString(), 'from a thenable\n')
  const atOnce = await get('/thenable.mjs?sync=1')
  assert.equal(atOnce.status, 200)
  assert.equal(atOnce.body.toString(), 'from a thenable (sync)\n')
})

test('a missing script: 404 "File not found.", "Primary script unknown" on FCGI_STDERR and in the log', async () => {
  const mark = fpm.logs.length
  const res = await get('/missing.mjs')
  assert.equal(res.status, 404)
  assert.equal(res.body.toString().trim(), 'File not found.')
  assert.match(res.stderr, /Primary script unknown/)
  const line = await fpm.waitForLog((l) => l.msg === 'Primary script unknown' && l.uri === '/missing.mjs')
  assert.equal(line.pool, 'e2e')
  assert.ok(logsSince(mark).includes(line))
})

test('a forbidden extension (.txt exists in the root): 403 "Access denied."', async () => {
  const res = await get('/not-allowed.txt')
  assert.equal(res.status, 403)
  assert.equal(res.body.toString().trim(), 'Access denied.')
  assert.match(res.stderr, /denied/)
  assert.doesNotMatch(res.body.toString(), /limit_extensions|403 Access denied/, 'the body is the short message only')
})

test('SCRIPT_FILENAME with ".." escaping the root is 404, even though the file exists', async () => {
  const escaping = `${E2E}/../apps/hello.mjs`
  assert.ok(existsSync(escaping), 'the target exists: only the escape can make it a 404')
  const res = await get('/../apps/hello.mjs', { scriptFilename: escaping })
  assert.equal(res.status, 404)
  assert.equal(res.body.toString().trim(), 'File not found.')
  assert.match(res.stderr, /Primary script unknown/)
  const line = await fpm.waitForLog((l) => l.msg === 'Primary script unknown' && typeof l.reason === 'string' && l.reason.includes('outside the root'))
  assert.equal(line.pool, 'e2e')
})

test('symlinks: one staying inside the root works, one (file or directory) pointing outside is 404', async () => {
  const jail = async (file: string): Promise<FcgiResponse> =>
    await fcgiRequest(jailAddr, { params: buildCgiParams({ uri: '/' + file, documentRoot: JAIL }) }, { timeoutMs: 10_000 })
  const inside = await jail('inside.mjs')
  assert.equal(inside.status, 200)
  assert.equal(inside.body.toString(), 'inside')
  const alias = await jail('alias.mjs')
  assert.equal(alias.status, 200)
  assert.equal(alias.body.toString(), 'inside')
  for (const file of ['escape.mjs', 'linkdir/secret.mjs']) {
    const res = await jail(file)
    assert.equal(res.status, 404, file)
    assert.equal(res.body.toString().trim(), 'File not found.', file)
    assert.doesNotMatch(res.body.toString(), /secret/, file)
  }
})

test('a throwing handler: 500, and the error log line has the message, the stack, pool, script and uri', async () => {
  const res = await get('/throws.mjs?q=1')
  assert.equal(res.status, 500)
  assert.equal(res.body.toString().trim(), 'Internal Server Error')
  assert.doesNotMatch(res.body.toString(), /boom/, 'the error stays out of the response')
  const line = await fpm.waitForLog((l) => l.level >= 50 && /e2e boom/.test(l.msg))
  assert.equal(line.pool, 'e2e')
  assert.equal(line.script, join(E2E, 'throws.mjs'))
  assert.equal(line.uri, '/throws.mjs?q=1')
  const err = line.err as { message?: string, stack?: string } | undefined
  assert.equal(err?.message, 'e2e boom: the handler failed on purpose')
  assert.match(err?.stack ?? '', /failOnPurpose/)
  assert.match(err?.stack ?? '', /throws\.mjs:\d+/)
})

test('process.exit() in a handler: that request gets 502, the pool replaces the thread, later requests succeed', async () => {
  // Three deaths with two threads: at least one replacement thread dies too, so the pool really
  // keeps making new threads.
  for (let i = 0; i < 3; i++) {
    const res = await get('/exit.mjs')
    assert.equal(res.status, 502, `exit #${i + 1}`)
    assert.equal(res.body.toString().trim(), 'Bad Gateway')
  }
  const line = await fpm.waitForLog((l) => l.level >= 50 && /worker thread ended/.test(l.msg))
  assert.equal(line.pool, 'e2e')
  assert.equal(line.script, join(E2E, 'exit.mjs'))
  const results = await Promise.all(Array.from({ length: 12 }, async (_, i) => await get(`/echo.mjs?i=${i}`)))
  for (const [i, res] of results.entries()) {
    assert.equal(res.status, 200, `request ${i} after the deaths`)
    assert.equal(new URL(json(res).url as string).searchParams.get('i'), String(i))
  }
  assert.equal(fpm.child.exitCode, null, 'node-fpm itself is still running')
})

test('a TypeScript handler (.ts) runs with its types stripped', async () => {
  const res = await get('/typed.ts?name=node')
  assert.equal(res.status, 200)
  assert.equal(header(res, 'x-handler'), 'typed.ts')
  assert.match(header(res, 'content-type') ?? '', /^application\/json/)
  assert.deepEqual(json(res), { language: 'ts', words: ['typed', 'handler'], name: 'node', method: 'GET', pool: 'e2e-pool' })
})

test('a CommonJS handler (.cjs, module.exports = { fetch })', async () => {
  const res = await get('/legacy.cjs')
  assert.equal(res.status, 200)
  assert.equal(header(res, 'x-handler'), 'legacy.cjs')
  assert.equal(res.body.toString(), 'legacy cjs on string: /legacy.cjs')
})

test('HEAD: the headers, no body', async () => {
  const res = await get('/hello.mjs', { method: 'HEAD' })
  assert.equal(res.status, 200)
  assert.equal(header(res, 'content-type'), 'text/plain; charset=utf-8')
  assert.equal(header(res, 'x-handler'), 'hello')
  assert.equal(res.body.length, 0)
  const missing = await get('/missing.mjs', { method: 'HEAD' })
  assert.equal(missing.status, 404)
  assert.equal(missing.body.length, 0)
})

test('status 201 with its reason phrase, and two Set-Cookie headers kept separate', async () => {
  const res = await get('/cookies.mjs')
  assert.equal(res.status, 201)
  assert.equal(res.statusText, 'Created Just Now')
  assert.match(res.raw.toString('latin1'), /^Status: 201 Created Just Now\r\n/)
  assert.deepEqual(headerValues(res, 'set-cookie'), ['session=abc123; Path=/; HttpOnly', 'theme=dark; Path=/; Max-Age=3600'])
  assert.equal(res.body.toString(), 'created\n')
})

test('env: the pool env[...] values and every FastCGI param (params win); process.env is the pool env only', async () => {
  const names = 'E2E_POOL,OVERRIDE_ME,MARK_FILE,SCRIPT_FILENAME,REQUEST_METHOD,QUERY_STRING,CUSTOM_PARAM,HTTP_X_E2E,HTTP_X_UTF8'
  const res = await get(`/echo.mjs?env=${names}&penv=E2E_POOL,HOME,PATH`, {
    headers: [['X-E2E', 'header-value'], ['X-Utf8', 'héllo €']],
    extra: { CUSTOM_PARAM: 'custom', OVERRIDE_ME: 'from-param' }
  })
  assert.equal(res.status, 200)
  const body = json(res)
  assert.deepEqual(body.env, {
    E2E_POOL: 'e2e-pool',
    OVERRIDE_ME: 'from-param',
    MARK_FILE: join(fpm.dir, 'mark'),
    SCRIPT_FILENAME: join(E2E, 'echo.mjs'),
    REQUEST_METHOD: 'GET',
    QUERY_STRING: `env=${names}&penv=E2E_POOL,HOME,PATH`,
    CUSTOM_PARAM: 'custom',
    HTTP_X_E2E: 'header-value',
    // Params are latin1: the UTF-8 bytes the web server sent, one char per byte.
    HTTP_X_UTF8: Buffer.from('héllo €', 'utf8').toString('latin1')
  })
  // clear_env = yes (the default): the thread's process.env holds the env[...] values only.
  assert.deepEqual(body.processEnv, { E2E_POOL: 'e2e-pool', HOME: null, PATH: null })
  assert.equal((body.headers as Record<string, string>)['x-e2e'], 'header-value')
})

test('POST: method, body and CONTENT_TYPE/CONTENT_LENGTH reach the Request', async () => {
  const payload = Buffer.from('name=node-fpm&kind=e2e')
  const res = await get('/echo.mjs', {
    method: 'POST',
    headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(payload.length)]]
  }, payload)
  assert.equal(res.status, 200)
  const body = json(res)
  assert.equal(body.method, 'POST')
  assert.equal(body.body, 'name=node-fpm&kind=e2e')
  assert.deepEqual(body.headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(payload.length), host: 'localhost' })
})

test('large bodies both ways: 1 MB and 5 MB echoed intact, ten times (the response goes over the channel, in many CHUNKs)', async () => {
  for (let i = 0; i < 10; i++) {
    const size = i % 2 === 0 ? 1024 * 1024 : 5 * 1024 * 1024
    const payload = randomBytes(size)
    const res = await fcgiRequest(addr, {
      params: params('/echo.mjs?raw=1', { method: 'POST', headers: [['Content-Type', 'application/octet-stream']], bodyLength: size }),
      body: payload
    }, { timeoutMs: 10_000 })
    assert.equal(res.status, 200, `round ${i}`)
    assert.equal(res.body.length, size, `round ${i}`)
    assert.ok(res.body.equals(payload), `round ${i}: the echoed body differs`)
  }
})

test('ctx.finishRequest(): the response arrives well before the 300 ms of work after it end; then the work completes', async () => {
  const token = `finish-${process.pid}-${Date.now()}`
  const markFile = join(fpm.dir, `mark.${token}`)
  const res = await get(`/finish.mjs?token=${token}`)
  const receivedAt = Date.now()
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'done')
  assert.equal(existsSync(markFile), false, 'END_REQUEST came before the work after finishRequest() ended')
  const mark = JSON.parse(await waitForFile(markFile, 5000)) as { startedAt: number, endedAt: number, finished: boolean }
  assert.equal(mark.finished, true, 'finishRequest() resolved true')
  assert.ok(mark.endedAt - mark.startedAt >= 290, `the work took ${mark.endedAt - mark.startedAt} ms`)
  assert.ok(receivedAt <= mark.endedAt - 100, `the response came ${mark.endedAt - receivedAt} ms before the work ended (want >= 100)`)
})

test('ctx.waitUntil(): the response does not wait, and the timer-driven work completes with no further request', async () => {
  const token = `bg-${process.pid}-${Date.now()}`
  const markFile = join(fpm.dir, `mark.${token}`)
  const res = await get(`/background.mjs?token=${token}`)
  const receivedAt = Date.now()
  assert.equal(res.status, 202)
  assert.equal(res.body.toString(), 'queued')
  // No request from here on: the file must appear by itself.
  const mark = JSON.parse(await waitForFile(markFile, 5000)) as { startedAt: number, endedAt: number }
  assert.ok(mark.endedAt - mark.startedAt >= 190, `the timer fired after ${mark.endedAt - mark.startedAt} ms`)
  assert.ok(receivedAt <= mark.endedAt, 'the response did not wait for the waitUntil() work')
})

test('a fire-and-forget timer left by a handler fires while its thread is idle (piscina atomics mode does not stall it)', async () => {
  const token = `detached-${process.pid}-${Date.now()}`
  const markFile = join(fpm.dir, `mark.${token}`)
  const res = await get(`/background.mjs?detached=1&token=${token}`)
  assert.equal(res.status, 202)
  const mark = JSON.parse(await waitForFile(markFile, 5000)) as { startedAt: number, endedAt: number }
  assert.ok(mark.endedAt - mark.startedAt >= 190)
  assert.ok(mark.endedAt - mark.startedAt < 4000, `the timer was late: ${mark.endedAt - mark.startedAt} ms`)
})

test('request.url: scheme from REQUEST_SCHEME or HTTPS, authority from HTTP_HOST else SERVER_NAME:SERVER_PORT, then REQUEST_URI', async () => {
  const cases: Array<{ name: string, set: Record<string, string>, drop?: string[], want: string }> = [
    { name: 'REQUEST_SCHEME https + HTTP_HOST with a port', set: { REQUEST_SCHEME: 'https', HTTPS: 'on', HTTP_HOST: 'example.com:8443' }, want: 'https://example.com:8443/echo.mjs?a=1&b=two' },
    { name: 'HTTPS=on without REQUEST_SCHEME', set: { HTTPS: 'on', HTTP_HOST: 'secure.example' }, drop: ['REQUEST_SCHEME'], want: 'https://secure.example/echo.mjs?a=1&b=two' },
    { name: 'HTTPS=off without REQUEST_SCHEME', set: { HTTPS: 'off', HTTP_HOST: 'plain.example' }, drop: ['REQUEST_SCHEME'], want: 'http://plain.example/echo.mjs?a=1&b=two' },
    { name: 'REQUEST_SCHEME wins over HTTPS', set: { REQUEST_SCHEME: 'http', HTTPS: 'on', HTTP_HOST: 'mixed.example' }, want: 'http://mixed.example/echo.mjs?a=1&b=two' },
    { name: 'no HTTP_HOST: SERVER_NAME:SERVER_PORT', set: { SERVER_NAME: 'srv.example', SERVER_PORT: '8080' }, drop: ['HTTP_HOST'], want: 'http://srv.example:8080/echo.mjs?a=1&b=two' },
    { name: 'no HTTP_HOST, default http port left out', set: { SERVER_NAME: 'srv.example', SERVER_PORT: '80' }, drop: ['HTTP_HOST'], want: 'http://srv.example/echo.mjs?a=1&b=two' },
    { name: 'no HTTP_HOST, https on 443', set: { REQUEST_SCHEME: 'https', SERVER_NAME: 'srv.example', SERVER_PORT: '443' }, drop: ['HTTP_HOST'], want: 'https://srv.example/echo.mjs?a=1&b=two' },
    { name: 'HTTP_HOST wins over SERVER_NAME', set: { HTTP_HOST: 'host.example', SERVER_NAME: 'srv.example', SERVER_PORT: '8080' }, want: 'http://host.example/echo.mjs?a=1&b=two' }
  ]
  for (const c of cases) {
    const p = params('/echo.mjs?a=1&b=two')
    for (const name of c.drop ?? []) Reflect.deleteProperty(p, name)
    Object.assign(p, c.set)
    const res = await fcgiRequest(addr, { params: p }, { timeoutMs: 10_000 })
    assert.equal(res.status, 200, c.name)
    assert.equal(json(res).url, c.want, c.name)
  }
})

test('the server logged no unexpected errors (only the throw and the thread deaths above)', () => {
  const unexpected = fpm.logs.filter((l) => l.level >= 50 && !/e2e boom|worker thread ended/.test(l.msg))
  assert.deepEqual(unexpected, [])
})
