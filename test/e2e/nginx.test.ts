// node-fpm behind a real nginx: Node's fetch -> nginx (HTTP) -> fastcgi_pass -> node-fpm, over TCP
// and over a unix socket, with and without fastcgi_keep_conn, with and without request buffering,
// and a real Hono app as the front controller of a pool. nginx missing: skipped locally, a failure
// under CI (process.env.CI).

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { findNginx, startNginx } from '../helpers/nginx.ts'
import type { NginxHandle } from '../helpers/nginx.ts'

const E2E = join(REPO, 'test/fixtures/e2e-apps')
const inCI = process.env.CI !== undefined && process.env.CI !== ''
const haveNginx = findNginx() !== null

test('nginx is available (required under CI)', { skip: !haveNginx && !inCI ? 'nginx not installed' : false }, () => {
  assert.ok(haveNginx, 'nginx is not installed, and CI must run the nginx tests (.ci/run installs it)')
})

const CONFIG = `
[global]
error_log = stderr

[tcp]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 4
root = {{ROOT}}
env[E2E_POOL] = tcp-pool
env[MARK_FILE] = {{DIR}}/mark

[unix]
listen = {{DIR}}/e2e.sock
pm = static
pm.max_children = 2
root = {{ROOT}}
env[E2E_POOL] = unix-pool

[hono]
listen = 127.0.0.1:{{PORT2}}
pm = static
pm.max_children = 2
handler = {{ROOT}}/hono-app/app.mjs
env[E2E_POOL] = hono-pool
`

const TIMEOUT_MS = 15_000
const MB = 1024 * 1024

interface EchoJson {
  method: string
  url: string
  body: string | null
  bodyLength: number
  headers: Record<string, string>
  env: Record<string, string | null>
}

async function httpFetch (url: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), ...init })
}

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

describe('node-fpm behind nginx', { skip: haveNginx ? false : 'nginx not installed' }, () => {
  let fpm: FpmHandle
  let plain: NginxHandle // TCP, one FastCGI connection per request
  let kept: NginxHandle // TCP, fastcgi_keep_conn on + upstream keepalive
  let unbuffered: NginxHandle // TCP, keep_conn, fastcgi_request_buffering off
  let unix: NginxHandle // unix socket
  let hono: NginxHandle // the Hono front-controller pool, keep_conn
  const nginxes: NginxHandle[] = []

  before(async () => {
    fpm = await startFpm(CONFIG, { root: E2E })
    const tcp = `127.0.0.1:${fpm.port}`
    const start = async (opts: Parameters<typeof startNginx>[0]): Promise<NginxHandle> => {
      const handle = await startNginx(opts)
      nginxes.push(handle)
      return handle
    }
    plain = await start({ upstream: tcp, documentRoot: E2E })
    kept = await start({ upstream: tcp, documentRoot: E2E, keepConn: true })
    unbuffered = await start({ upstream: tcp, documentRoot: E2E, keepConn: true, requestBuffering: false })
    unix = await start({ upstream: join(fpm.dir, 'e2e.sock'), documentRoot: E2E })
    hono = await start({ upstream: `127.0.0.1:${fpm.port2}`, keepConn: true })
  })

  after(async () => {
    // The error logs are checked before they go: nothing but the FCGI_STDERR lines the tests cause.
    const problems: string[] = []
    for (const n of nginxes) {
      let log = ''
      try { log = readFileSync(n.errorLog, 'utf8') } catch {}
      for (const line of log.split('\n')) {
        if (!/\[(error|crit|alert|emerg)\]/.test(line)) continue
        if (/FastCGI sent in stderr: "(Primary script unknown|Access to the script)/.test(line)) continue
        problems.push(line)
      }
    }
    await Promise.all(nginxes.map(async (n) => { await n.stop() }))
    const code = await fpm?.stop()
    assert.deepEqual(problems, [], 'unexpected nginx errors')
    assert.equal(code, 0)
    const fpmErrors = fpm.logs.filter((l) => l.level >= 50 && !/e2e boom|worker thread ended|said: SyntaxError: (Expected property name|Unexpected token)/.test(l.msg))
    assert.deepEqual(fpmErrors, [], 'unexpected node-fpm errors')
  })

  test('GET over TCP: status, headers, body, and the request the handler saw', async () => {
    const res = await httpFetch(`${plain.url}/hello.mjs`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8')
    assert.equal(res.headers.get('x-handler'), 'hello')
    assert.equal(await res.text(), 'Hello, e2e! /hello.mjs\n')

    const echo = await httpFetch(`${plain.url}/echo.mjs?x=1&y=%C3%A9&env=E2E_POOL,SCRIPT_FILENAME,REQUEST_SCHEME,SERVER_PORT`, {
      headers: { 'x-e2e': 'through nginx', cookie: 'a=1; b=2' }
    })
    assert.equal(echo.status, 200)
    const body = await echo.json() as EchoJson
    assert.equal(body.method, 'GET')
    const url = new URL(body.url)
    assert.equal(url.protocol, 'http:')
    // Debian's fastcgi_params sends HTTP_HOST = $host (the Host header without its port); without
    // it, nginx passes the Host header itself as HTTP_HOST.
    assert.ok(url.host === '127.0.0.1' || url.host === `127.0.0.1:${plain.port}`, `host ${url.host}`)
    assert.equal(url.pathname, '/echo.mjs')
    assert.equal(url.searchParams.get('y'), 'é')
    assert.equal(body.headers['x-e2e'], 'through nginx')
    assert.equal(body.headers.cookie, 'a=1; b=2')
    assert.deepEqual(body.env, {
      E2E_POOL: 'tcp-pool',
      SCRIPT_FILENAME: join(E2E, 'echo.mjs'),
      REQUEST_SCHEME: 'http',
      SERVER_PORT: String(plain.port)
    })
  })

  test('GET and POST to a pool on a unix socket', async () => {
    const res = await httpFetch(`${unix.url}/hello.mjs`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), 'Hello, e2e! /hello.mjs\n')
    const post = await httpFetch(`${unix.url}/echo.mjs?env=E2E_POOL`, { method: 'POST', body: 'over a unix socket', headers: { 'content-type': 'text/plain' } })
    assert.equal(post.status, 200)
    const body = await post.json() as EchoJson
    assert.equal(body.body, 'over a unix socket')
    assert.equal(body.env.E2E_POOL, 'unix-pool')
  })

  test('fastcgi_keep_conn on with upstream keepalive: 50 sequential then 20 concurrent requests, all 200 and correct', async () => {
    const check = async (i: number): Promise<void> => {
      const res = await httpFetch(`${kept.url}/echo.mjs?i=${i}`, { headers: { 'x-e2e': `req-${i}` } })
      assert.equal(res.status, 200, `request ${i}`)
      const body = await res.json() as EchoJson
      assert.equal(new URL(body.url).searchParams.get('i'), String(i), `request ${i} got another request's response`)
      assert.equal(body.headers['x-e2e'], `req-${i}`)
    }
    for (let i = 0; i < 50; i++) await check(i)
    await Promise.all(Array.from({ length: 20 }, async (_, i) => { await check(100 + i) }))
    // A mix of handlers and statuses on the same kept connections.
    const mixed = await Promise.all(['/hello.mjs', '/missing.mjs', '/cookies.mjs', '/typed.ts', '/legacy.cjs', '/hello.mjs'].map(async (p) => {
      const res = await httpFetch(`${kept.url}${p}`)
      await res.arrayBuffer()
      return res.status
    }))
    assert.deepEqual(mixed, [200, 404, 201, 200, 200, 200])
  })

  test('POST a small urlencoded form', async () => {
    const res = await httpFetch(`${plain.url}/echo.mjs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'node fpm', lang: 'é&=' }).toString()
    })
    assert.equal(res.status, 200)
    const body = await res.json() as EchoJson
    assert.equal(body.method, 'POST')
    assert.equal(body.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(body.body, 'name=node+fpm&lang=%C3%A9%26%3D')
    assert.equal(body.headers['content-length'], String(body.bodyLength))
    assert.deepEqual(Object.fromEntries(new URLSearchParams(body.body ?? '')), { name: 'node fpm', lang: 'é&=' })
  })

  for (const mode of ['buffered', 'unbuffered'] as const) {
    test(`POST 5 MB of binary, echoed byte for byte (fastcgi_request_buffering ${mode === 'buffered' ? 'on' : 'off'})`, async () => {
      const nginx = mode === 'buffered' ? kept : unbuffered
      const payload = randomBytes(5 * MB)
      const res = await httpFetch(`${nginx.url}/echo.mjs?raw=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: payload
      })
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('x-body-length'), String(payload.length))
      assert.equal(res.headers.get('x-body-sha256'), sha256(payload))
      const echoed = Buffer.from(await res.arrayBuffer())
      assert.equal(echoed.length, payload.length)
      assert.ok(echoed.equals(payload), 'the echoed body differs from the payload')
    })
  }

  test('POST 5 MB streamed in chunks (no Content-Length) with fastcgi_request_buffering off', async () => {
    const payload = randomBytes(5 * MB)
    const piece = 256 * 1024
    let offset = 0
    const stream = new ReadableStream<Uint8Array>({
      async pull (controller) {
        if (offset >= payload.length) { controller.close(); return }
        await new Promise((resolve) => setImmediate(resolve))
        controller.enqueue(payload.subarray(offset, offset + piece))
        offset += piece
      }
    })
    const res = await httpFetch(`${unbuffered.url}/echo.mjs?raw=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: stream,
      duplex: 'half'
    } as RequestInit)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-body-sha256'), sha256(payload))
    const echoed = Buffer.from(await res.arrayBuffer())
    assert.ok(echoed.equals(payload), `the echoed body differs (${echoed.length} bytes back, ${payload.length} sent)`)
  })

  test('node-fpm\'s own statuses pass through nginx: 404, 403, 500; nginx logs FCGI_STDERR', async () => {
    const missing = await httpFetch(`${kept.url}/missing.mjs`)
    assert.equal(missing.status, 404)
    assert.equal((await missing.text()).trim(), 'File not found.')
    const denied = await httpFetch(`${kept.url}/not-allowed.txt`)
    assert.equal(denied.status, 403)
    assert.equal((await denied.text()).trim(), 'Access denied.')
    const threw = await httpFetch(`${kept.url}/throws.mjs`)
    assert.equal(threw.status, 500)
    assert.equal((await threw.text()).trim(), 'Internal Server Error')
    const cookies = await httpFetch(`${kept.url}/cookies.mjs`)
    assert.equal(cookies.status, 201)
    assert.deepEqual(cookies.headers.getSetCookie(), ['session=abc123; Path=/; HttpOnly', 'theme=dark; Path=/; Max-Age=3600'])
    await cookies.arrayBuffer()
    assert.match(readFileSync(kept.errorLog, 'utf8'), /FastCGI sent in stderr: "Primary script unknown"/)
  })

  test('a thread that dies (process.exit) is a 502 through nginx; the pool carries on on the same kept connections', async () => {
    const died = await httpFetch(`${kept.url}/exit.mjs`)
    assert.equal(died.status, 502)
    assert.equal((await died.text()).trim(), 'Bad Gateway')
    const after = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const res = await httpFetch(`${kept.url}/hello.mjs?after=${i}`)
      return { status: res.status, body: await res.text() }
    }))
    for (const r of after) assert.deepEqual(r, { status: 200, body: 'Hello, e2e! /hello.mjs\n' })
  })

  test('ctx.finishRequest() through nginx: the client has the response before the handler\'s work ends', async () => {
    const token = `nginx-finish-${Date.now()}`
    const markFile = join(fpm.dir, `mark.${token}`)
    const res = await httpFetch(`${kept.url}/finish.mjs?token=${token}`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), 'done')
    const receivedAt = Date.now()
    assert.equal(existsSync(markFile), false, 'the response came before the work after finishRequest() ended')
    // The kept connection serves other requests meanwhile.
    const other = await httpFetch(`${kept.url}/hello.mjs`)
    assert.equal(other.status, 200)
    await other.arrayBuffer()
    let mark: { endedAt: number, finished: boolean } | null = null
    for (const deadline = Date.now() + 5000; mark === null && Date.now() < deadline; await sleep(20)) {
      const text = existsSync(markFile) ? readFileSync(markFile, 'utf8') : ''
      if (text !== '') mark = JSON.parse(text) as { endedAt: number, finished: boolean }
    }
    assert.ok(mark !== null, 'the work after finishRequest() completed')
    assert.equal(mark.finished, true)
    assert.ok(receivedAt <= mark.endedAt - 100, `the response came ${mark.endedAt - receivedAt} ms before the work ended (want >= 100)`)
  })

  describe('a Hono app as the pool\'s front controller (handler = hono-app/app.mjs, nginx location / passes everything)', () => {
    test('GET /: text, through the middleware', async () => {
      const res = await httpFetch(`${hono.url}/`)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
      assert.equal(res.headers.get('x-e2e-middleware'), 'hono')
      assert.equal(await res.text(), 'Hono home')
    })

    test('GET /users/:id with a query: c.json', async () => {
      const res = await httpFetch(`${hono.url}/users/42?fields=name`)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
      assert.equal(res.headers.get('x-e2e-middleware'), 'hono')
      assert.deepEqual(await res.json(), { id: '42', name: 'user 42', fields: 'name' })
    })

    test('POST /echo: await c.req.json() and a 201', async () => {
      const data = { hello: 'world', list: [1, 2, 3], nested: { ok: true }, text: 'é€😀' }
      const res = await httpFetch(`${hono.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(data)
      })
      assert.equal(res.status, 201)
      assert.equal(res.headers.get('x-e2e-middleware'), 'hono')
      assert.deepEqual(await res.json(), { received: data, contentType: 'application/json' })
    })

    test('an unknown route: the app\'s notFound handler (404 JSON), through the middleware', async () => {
      const res = await httpFetch(`${hono.url}/no/such/route?x=1`)
      assert.equal(res.status, 404)
      assert.equal(res.headers.get('x-e2e-middleware'), 'hono')
      assert.deepEqual(await res.json(), { error: 'not found', path: '/no/such/route' })
      const wrongMethod = await httpFetch(`${hono.url}/echo`)
      assert.equal(wrongMethod.status, 404)
      await wrongMethod.arrayBuffer()
    })

    test('c.env is the handler env, c.executionCtx.waitUntil works, c.redirect gives a 302 with Location', async () => {
      const env = await httpFetch(`${hono.url}/env`)
      assert.deepEqual(await env.json(), { pool: 'hono-pool', scheme: 'http:' })
      const later = await httpFetch(`${hono.url}/later`)
      assert.equal(later.status, 200)
      assert.equal(await later.text(), 'later')
      const go = await httpFetch(`${hono.url}/go`, { redirect: 'manual' })
      assert.equal(go.status, 302)
      assert.equal(go.headers.get('location'), '/users/7')
      await go.arrayBuffer()
      const head = await httpFetch(`${hono.url}/users/9`, { method: 'HEAD' })
      assert.equal(head.status, 200)
      assert.match(head.headers.get('content-type') ?? '', /^application\/json/)
      assert.equal((await head.arrayBuffer()).byteLength, 0)
    })

    test('malformed JSON: c.req.json() throws, Hono\'s own error handler answers 500', async () => {
      const res = await httpFetch(`${hono.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad json' })
      assert.equal(res.status, 500)
      assert.equal(await res.text(), 'Internal Server Error')
    })

    test('handler console output reaches node-fpm\'s log as a JSON line tagged with the pool (www.conf: catch_workers_output)', async () => {
      const res = await httpFetch(`${hono.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{also bad' })
      assert.equal(res.status, 500)
      await res.arrayBuffer()
      // Hono's default onError does console.error(err): it must come out through the logger.
      await sleep(500)
      const line = fpm.logs.find((l) => l.pool === 'hono' && /SyntaxError/.test(JSON.stringify(l)))
      const raw = fpm.rawStderr().split('\n').find((l) => l.startsWith('SyntaxError')) ?? '(nothing)'
      assert.ok(line !== undefined, `no log line of pool hono carries the error; raw stderr line: ${raw}`)
      assert.ok(line.level >= 40)
    })

    test('30 concurrent requests across routes on kept connections', async () => {
      const results = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
        const res = await httpFetch(`${hono.url}/users/${i}`)
        return { status: res.status, body: await res.json() as { id: string } }
      }))
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, 200)
        assert.equal(r.body.id, String(i))
      }
    })
  })
})
