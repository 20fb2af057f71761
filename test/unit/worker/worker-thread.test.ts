// The worker in a real Piscina thread: HELLO, fast-path responses, request building, env, errors.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { bodyBytes, Msg } from '../../../src/common/messages.ts'
import { APPS, cgi, Harness, sleep } from './harness.ts'

const INTERNAL_ERROR_HEAD = 'Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
const text = (body: Uint8Array | string | null | undefined): string => body == null ? '' : Buffer.from(bodyBytes(body) ?? []).toString('latin1')

describe('worker thread: start-up and fast path', () => {
  let h: Harness
  before(async () => { h = await Harness.start({ env: { POOL_VAR: 'from-pool', SHARED: 'pool' } }) })
  after(() => h.close())

  it('posts HELLO with its threadId and a port at start-up', () => {
    assert.equal(h.hellos.length, 1)
    assert.equal(h.hellos[0]?.t, Msg.HELLO)
    assert.equal(typeof h.hellos[0]?.threadId, 'number')
    assert.ok(h.hellos[0]?.threadId !== 0)
  })

  it('returns a small prompt response in the task result, with nothing on the channel', async () => {
    const run = h.run('hello.mjs')
    const result = await run.result
    // A small body comes back as latin1 text (WorkerResult.response): a string clones cheaper than bytes.
    assert.deepEqual(result, { response: { head: 'Content-Type: text/plain;charset=UTF-8\r\n\r\n', body: 'hello' }, error: null })
    await sleep(20)
    assert.equal(run.log.messages.length, 0)
  })

  it('builds the Request from the params and env from the pool env + params', async () => {
    const params = cgi({
      REQUEST_METHOD: 'POST',
      REQUEST_URI: '/caf\u00c3\u00a9/x?q=\u00e9',
      HTTPS: 'on',
      HTTP_HOST: 'shop.example',
      HTTP_X_FORWARDED_FOR: '10.1.2.3',
      HTTP_X_BROKEN: 'a\u0000b',
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: '4',
      SHARED: 'param'
    })
    const result = await h.run('info.mjs', { params, body: new TextEncoder().encode('body') }).result
    const info = JSON.parse(Buffer.from(bodyBytes(result.response?.body ?? null) ?? []).toString('utf8'))
    assert.equal(info.method, 'POST')
    assert.equal(info.url, 'https://shop.example/caf%C3%A9/x?q=%E9')
    assert.deepEqual(info.headers, [
      ['content-length', '4'], ['content-type', 'text/plain'], ['host', 'shop.example'], ['x-forwarded-for', '10.1.2.3']
    ])
    assert.equal(info.hasBody, true)
    assert.deepEqual(info.env, { POOL_VAR: 'from-pool', REQUEST_URI: '/caf\u00c3\u00a9/x?q=\u00e9', SHARED: 'param' })
  })

  it('echoes an in-memory request body', async () => {
    const body = new Uint8Array(3000).map((_, i) => i & 0xff)
    const result = await h.run('echo.mjs', { params: cgi({ REQUEST_METHOD: 'PUT', CONTENT_TYPE: 'application/x-test' }), body }).result
    assert.equal(result.response?.head, 'Content-Type: application/x-test\r\nX-Body-Length: 3000\r\n\r\n')
    assert.deepEqual(bodyBytes(result.response?.body ?? null), Buffer.from(body))
  })

  it('HEAD: the head only, no body bytes', async () => {
    const result = await h.run('hello.mjs', { params: cgi({ REQUEST_METHOD: 'HEAD' }), isHead: true }).result
    assert.deepEqual(result, { response: { head: 'Content-Type: text/plain;charset=UTF-8\r\n\r\n', body: null }, error: null })
  })

  it('serves a fetch object (this bound), a Hono app, a .ts and a .cjs handler', async () => {
    const object = await h.run('object.mjs').result
    assert.equal(text(object.response?.body), 'hi from object from-pool')
    const hono = await h.run('hono.mjs', { params: cgi({ REQUEST_URI: '/hono/bob' }) }).result
    assert.equal(hono.error, null)
    assert.equal(hono.response?.head, 'Content-Type: application/json\r\n\r\n')
    assert.deepEqual(JSON.parse(text(hono.response?.body)), { name: 'bob', pool: 'from-pool' })
    const ts = await h.run('typed.ts', { params: cgi({ REQUEST_URI: '/t' }) }).result
    assert.equal(text(ts.response?.body), 'hello from ts /t')
    const cjs = await h.run('commonjs.cjs', { params: cgi({ REQUEST_METHOD: 'DELETE' }) }).result
    assert.equal(text(cjs.response?.body), 'hello from cjs DELETE')
  })

  it('serves concurrent requests in one thread, each routed by id', async () => {
    const runs = [1, 2, 3].map(() => h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=4&size=3&delay=15' }), autoAck: true }))
    const results = await Promise.all(runs.map((r) => r.result))
    for (const [i, run] of runs.entries()) {
      assert.equal(results[i]?.response, null, 'a paced stream goes over the channel')
      // The task result and the channel are different ports: the end may arrive after the result.
      await run.log.until(() => run.log.ended)
      assert.deepEqual([...run.log.body], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    }
  })

  it('ignores channel messages for unknown ids', async () => {
    h.send({ t: Msg.ACK, id: 987654, bytes: 10 })
    h.send({ t: Msg.BODY, id: 987655, body: new Uint8Array(3), end: true, error: null })
    const result = await h.run('hello.mjs').result
    assert.equal(text(result.response?.body), 'hello')
  })
})

describe('worker thread: handler faults', () => {
  let h: Harness
  before(async () => { h = await Harness.start() })
  after(() => h.close())

  it('a handler that throws: 500 + the serialized error', async () => {
    for (const uri of ['/', '/?async=1']) {
      const result = await h.run('throws.mjs', { params: cgi({ REQUEST_URI: uri }) }).result
      assert.equal(result.response?.head, INTERNAL_ERROR_HEAD)
      assert.equal(text(result.response?.body), 'Internal Server Error\n')
      assert.equal(result.error?.name, 'Error')
      assert.equal(result.error?.message, 'handler exploded')
      assert.equal(result.error?.code, 'E_TEST')
      assert.match(result.error?.stack ?? '', /throws\.mjs/)
    }
  })

  it('a handler that returns a non-Response: 500 + FPM_ERR_HANDLER_INVALID', async () => {
    const result = await h.run('not-a-response.mjs').result
    assert.equal(result.response?.head, INTERNAL_ERROR_HEAD)
    assert.equal(result.error?.code, 'FPM_ERR_HANDLER_INVALID')
    assert.equal(result.error?.message, `${APPS}not-a-response.mjs: the handler returned an object, not a Response`)
  })

  it('an invalid default export or a missing script: 500 + the error', async () => {
    const invalid = await h.run('invalid-export.mjs').result
    assert.equal(invalid.response?.head, INTERNAL_ERROR_HEAD)
    assert.equal(invalid.error?.code, 'FPM_ERR_HANDLER_INVALID')
    const missing = await h.run('does-not-exist.mjs').result
    assert.equal(missing.response?.head, INTERNAL_ERROR_HEAD)
    assert.equal(missing.error?.code, 'ERR_MODULE_NOT_FOUND')
  })

  it('a body stream that fails before anything was sent: 500 + its error', async () => {
    const result = await h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?fail=0' }) }).result
    assert.equal(result.response?.head, INTERNAL_ERROR_HEAD)
    assert.equal(result.error?.code, 'E_STREAM')
  })

  it('a method the Fetch API refuses: 501 without running the handler', async () => {
    const result = await h.run('throws.mjs', { params: cgi({ REQUEST_METHOD: 'TRACE' }) }).result
    assert.equal(result.response?.head, 'Status: 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n')
    assert.equal(result.error, null)
  })

  it('the thread survives all of this', async () => {
    const result = await h.run('hello.mjs').result
    assert.equal(text(result.response?.body), 'hello')
    assert.equal(h.pool.threads.length, 1)
  })
})

describe('worker thread: several threads', () => {
  let h: Harness
  before(async () => { h = await Harness.start({ threads: 2 }) })
  after(() => h.close())

  it('each thread says HELLO with its own port', () => {
    assert.equal(h.hellos.length, 2)
    assert.notEqual(h.hellos[0]?.threadId, h.hellos[1]?.threadId)
    assert.notEqual(h.ports[0], h.ports[1])
  })
})
