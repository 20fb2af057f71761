// The light Request/Response of the worker threads (src/worker/light-request.ts, light-response.ts)
// through the real server and real FastCGI: handlers keep seeing Request and Response as undici
// builds them (test/fixtures/apps/light-compat.mjs, light-hono.mjs), and a response recorded by a
// light Response goes out byte for byte as the same response read through undici's stream.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { join } from 'node:path'
import { buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import type { CgiParamsOptions, FcgiResponse } from '../../src/client/fcgi-client.ts'
import { Role, buildBeginRequest, buildStreamEnd, encodeParams, frameChunks, RecordType } from '../../src/fastcgi/index.ts'
import { APPS, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const CONFIG = `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
`

const COMPAT = join(APPS, 'light-compat.mjs')
const HONO = join(APPS, 'light-hono.mjs')

let fpm: FpmHandle

before(async () => {
  fpm = await startFpm(CONFIG, { args: ['--no-supervisor'] })
})

after(async () => {
  assert.equal(await fpm?.stop(), 0)
})

function params (uri: string, script: string, opts: Partial<CgiParamsOptions> = {}): Record<string, string> {
  return buildCgiParams({ uri, scriptFilename: script, ...opts })
}

async function request (uri: string, script: string, opts: Partial<CgiParamsOptions> = {}, body?: Uint8Array): Promise<FcgiResponse> {
  return await fcgiRequest(`127.0.0.1:${fpm.port}`, { params: params(uri, script, { bodyLength: body?.byteLength, ...opts }), body }, { timeoutMs: 10_000 })
}

/** Every byte the server sends for one request (id 1, no keep-conn: it closes after END_REQUEST). */
async function rawExchange (uri: string, method = 'GET'): Promise<Buffer> {
  const socket = net.connect(fpm.port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const closed = new Promise<void>((resolve, reject) => { socket.once('close', () => { resolve() }); socket.once('error', reject) })
  const encoded = encodeParams(Object.entries(params(uri, COMPAT, { method })))
  socket.write(Buffer.concat([buildBeginRequest(1, Role.RESPONDER, 0), ...frameChunks(RecordType.PARAMS, 1, encoded),
    buildStreamEnd(RecordType.PARAMS, 1), buildStreamEnd(RecordType.STDIN, 1)]))
  await closed
  return Buffer.concat(chunks)
}

function header (res: FcgiResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n.toLowerCase() === name)?.[1]
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('fast path and undici path send the same FastCGI bytes', () => {
  const variants = ['hello', 'json', 'bytes', 'buffer', 'noContent', 'unicode', 'empty', 'teapot', 'statusHeader', 'big']

  for (const variant of variants) {
    it(variant, async () => {
      for (const mutate of ['0', '1']) {
        const uri = (mode: string): string => `/light-compat.mjs?case=response&variant=${variant}&mutate=${mutate}&mode=${mode}`
        const light = await rawExchange(uri('light'))
        const undici = await rawExchange(uri('subclass'))
        const touched = await rawExchange(uri('touched'))
        assert.ok(light.length > 16, 'a response came')
        assert.deepEqual(light, undici, `mutate=${mutate}: light vs undici's Response`)
        assert.deepEqual(light, touched, `mutate=${mutate}: light vs light whose real Response was built`)
        const head = await rawExchange(uri('light'), 'HEAD')
        assert.deepEqual(head, await rawExchange(uri('subclass'), 'HEAD'), `mutate=${mutate}: HEAD`)
      }
    })
  }

  it('what those bytes are, for some of them', async () => {
    const hello = await request('/light-compat.mjs?case=response&variant=hello&mode=light', COMPAT)
    assert.equal(hello.raw.toString('latin1'), 'Content-Type: text/plain;charset=UTF-8\r\n\r\nHello, World!')
    const bytes = await request('/light-compat.mjs?case=response&variant=bytes&mode=light&mutate=1', COMPAT)
    assert.equal(bytes.raw.subarray(0, bytes.raw.length - 4).toString('latin1'),
      'Status: 404 Nope\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Api: v2\r\nX-Mutated: yes\r\n\r\n')
    assert.deepEqual([...bytes.body], [0, 1, 2, 255])
    const big = await request('/light-compat.mjs?case=response&variant=big&mode=light', COMPAT)
    assert.equal(big.body.toString(), '0123456789abcdef'.repeat(20_000))
    const teapot = await request('/light-compat.mjs?case=response&variant=teapot&mode=light', COMPAT)
    assert.equal(teapot.raw.toString('latin1').split('\r\n')[0], "Status: 418 I'm a Teapot")
  })
})

describe('handlers see Request and Response as before', () => {
  it('Response: instanceof, statics, subclasses, streams, clone', async () => {
    const res = await request('/light-compat.mjs?case=objects', COMPAT)
    assert.equal(res.status, 200)
    assert.equal(header(res, 'content-type'), 'application/json')
    assert.deepEqual(JSON.parse(res.body.toString()), {
      light: [true, true, '[object Response]'],
      json: [true, '{"k":1}'],
      redirect: [true, 'http://example.com/x'],
      error: [true, 'error'],
      subclass: [true, true, 203, 'sub'],
      stream: [true, 'streamed'],
      clone: [true, 'cl']
    })
  })

  it('a Response whose body the handler read: 500, as before', async () => {
    const res = await request('/light-compat.mjs?case=used', COMPAT)
    assert.equal(res.status, 500)
  })

  it("hono's c.res = new Response(c.res.body, c.res), then a header set", async () => {
    const res = await request('/light-compat.mjs?case=hono-style', COMPAT)
    assert.equal(res.status, 201)
    assert.equal(res.body.toString(), 'from hono')
    assert.equal(header(res, 'x-first'), '1')
    assert.equal(header(res, 'x-second'), '2')
  })

  const report = async (read: string, opts: Partial<CgiParamsOptions>, body?: Uint8Array): Promise<Record<string, unknown>> => {
    const res = await request(`/light-compat.mjs?case=request&read=${read}`, COMPAT, { headers: [['x-test', 'T']], ...opts }, body)
    assert.equal(res.status, 200, res.body.toString())
    return JSON.parse(res.body.toString()) as Record<string, unknown>
  }

  it('Request members (GET)', async () => {
    const got = await report('none', { extra: { HTTP_HOST: 'site.example' } })
    assert.deepEqual(got, {
      instanceofRequest: true,
      constructorIsRequest: true,
      tag: '[object Request]',
      method: 'GET',
      url: 'http://site.example/light-compat.mjs?case=request&read=none',
      headers: [['host', 'site.example'], ['x-test', 'T']],
      hasBody: false,
      signal: true,
      before: { bodyUsed: false },
      value: null,
      bodyUsed: false,
      cache: 'default',
      copy: 'T'
    })
  })

  it('request.text(), json(), arrayBuffer(), body stream; bodyUsed', async () => {
    const text = await report('text', { method: 'POST', headers: [['content-type', 'text/plain']] }, utf8('caf\u00e9'))
    assert.equal(text.value, 'caf\u00e9')
    assert.deepEqual(text.before, { bodyUsed: false })
    assert.equal(text.bodyUsed, true)
    assert.equal(text.hasBody, true)
    assert.deepEqual((await report('json', { method: 'PUT' }, utf8('{"a":[1,2]}'))).value, { a: [1, 2] })
    assert.deepEqual((await report('arrayBuffer', { method: 'POST' }, new Uint8Array([0, 200, 255]))).value, [0, 200, 255])
    assert.equal((await report('stream', { method: 'POST' }, new Uint8Array(100_000))).value, 100_000)
  })

  it('request.formData(): urlencoded and multipart', async () => {
    const form = await report('formData', { method: 'POST', headers: [['content-type', 'application/x-www-form-urlencoded']] }, utf8('a=1&b=x%20y'))
    assert.deepEqual(form.value, { a: '1', b: 'x y' })
    const data = new FormData()
    data.append('field', 'value')
    data.append('file', new Blob(['file body'], { type: 'text/plain' }), 'f.txt')
    const encoded = new Request('http://x/', { method: 'POST', body: data })
    const multipart = await report('formData', { method: 'POST', headers: [['content-type', encoded.headers.get('content-type') ?? '']] },
      new Uint8Array(await encoded.arrayBuffer()))
    assert.deepEqual(multipart.value, { field: 'value', file: { name: 'f.txt', type: 'text/plain', text: 'file body' } })
  })

  it('request.clone(): both read the body, the clone keeps the signal', async () => {
    const got = await report('clone', { method: 'POST' }, utf8('two readers'))
    assert.deepEqual(got.value, { clone: 'two readers', original: 'two readers', cloneIsRequest: true, sameSignal: true })
  })
})

describe('a Hono app', () => {
  const hono = (uri: string, opts: Partial<CgiParamsOptions> = {}, body?: Uint8Array): Promise<FcgiResponse> => request(uri, HONO, opts, body)

  it('c.text, c.json, c.body with c.header/c.status, middleware setting a header afterwards', async () => {
    const text = await hono('/text')
    assert.equal(text.body.toString(), 'hono text')
    assert.equal(header(text, 'content-type'), 'text/plain;charset=UTF-8', "hono's c.text() is new Response(text)")
    assert.equal(header(text, 'x-mw'), 'after')
    const json = await hono('/json')
    assert.equal(json.status, 201)
    assert.deepEqual(JSON.parse(json.body.toString()), { ok: true, raw: true })
    assert.equal(header(json, 'x-mw'), 'after')
    const withHeader = await hono('/header')
    assert.equal(withHeader.status, 202)
    assert.equal(header(withHeader, 'x-set'), 'by-handler')
    assert.equal(header(withHeader, 'x-mw'), 'after')
    assert.equal(withHeader.body.toString(), 'with header')
  })

  it('c.req.json(), c.req.parseBody(), reading the body twice', async () => {
    const json = await hono('/echo-json', { method: 'POST', headers: [['content-type', 'application/json']] }, utf8('{"n":7}'))
    assert.deepEqual(JSON.parse(json.body.toString()), { got: { n: 7 }, used: true })
    const form = await hono('/form', { method: 'POST', headers: [['content-type', 'application/x-www-form-urlencoded']] }, utf8('k=v&z=1'))
    assert.deepEqual(JSON.parse(form.body.toString()), { k: 'v', z: '1' })
    const twice = await hono('/twice', { method: 'POST' }, utf8('again'))
    assert.equal(twice.body.toString(), 'again|again')
  })

  it('a stream body, a redirect, c.res replaced, not found, onError', async () => {
    const stream = await hono('/stream')
    assert.equal(stream.body.toString(), 'chunk1,chunk2')
    assert.equal(header(stream, 'x-mw'), 'after')
    const redirect = await hono('/redirect')
    assert.equal(redirect.status, 301)
    assert.equal(header(redirect, 'location'), '/text')
    const replaced = await hono('/replace/me')
    assert.equal(replaced.status, 203)
    assert.equal(replaced.body.toString(), 'replaced: original')
    assert.equal(header(replaced, 'x-mw'), 'after')
    const missing = await hono('/nope')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.toString(), '404 Not Found')
    const thrown = await hono('/throw')
    assert.equal(thrown.status, 500)
    assert.equal(thrown.body.toString(), 'handled: boom')
  })
})
