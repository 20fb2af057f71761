// The light Request/Response (src/worker/light-request.ts, light-response.ts) against undici's own
// objects, in this process: the replacements are installed here as a worker thread installs them.
// Property tests: for random bodies and inits, `new Response()` (light when it can be) and undici's
// Response either both throw the same error, or show the same members and give the same CGI bytes
// (the light path: serializeLightHead + lightBodyBytes; undici's: serializeHead + its body stream).

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import fc from 'fast-check'

const NativeRequest = globalThis.Request
const NativeResponse = globalThis.Response
const nativeFetch = globalThis.fetch

const { installRequestGlobals, isLightRequest } = await import('../../../src/worker/light-request.ts')
const { installResponseGlobal, isLightResponse, takeLightResponse, discardLightResponse } = await import('../../../src/worker/light-response.ts')
const { lightBodyBytes, lightBodyText, serializeHead, serializeLightHead } = await import('../../../src/worker/web-response.ts')
const { TEXT_BODY_MAX_BYTES } = await import('../../../src/common/messages.ts')
const { cgiRequestParts, createRequest } = await import('../../../src/worker/cgi-request.ts')
installRequestGlobals()
installResponseGlobal()

const decoder = new TextDecoder()
type SignalSource = import('../../../src/worker/light-request.ts').SignalSource
type BodyInit = ConstructorParameters<typeof Response>[0]

async function streamBytes (body: ReadableStream<Uint8Array> | null): Promise<number[]> {
  if (body === null) return []
  const out: number[] = []
  for await (const chunk of body) out.push(...chunk)
  return out
}

/** What node-fpm sends for a Response it reads as undici's (the slow path). */
async function slowOutput (response: Response): Promise<{ head: string, body: number[] }> {
  return { head: serializeHead(response), body: await streamBytes(response.body) }
}

/** Light Responses sent from recorded header pairs (no Headers object built). */
let sentFromPairs = 0

/** What node-fpm sends for a light Response (the fast path). */
function fastOutput (response: Response): { head: string, body: number[] } {
  const parts = takeLightResponse(response, false)
  assert.ok(parts !== null, 'a light Response whose real one was never built')
  if (parts.headers === null && parts.headerPairs !== null) sentFromPairs++
  const body = [...lightBodyBytes(parts.body) ?? []]
  // The task result's form of a small body (latin1 text, one char per byte) holds the same bytes.
  const text = lightBodyText(parts.body)
  if (text !== null) assert.deepEqual([...Buffer.from(text, 'latin1')], body)
  else assert.ok(body.length > TEXT_BODY_MAX_BYTES, `${body.length} bytes, not sent as text`)
  return { head: serializeLightHead(parts), body }
}

function outcome (make: () => Response): { response: Response } | { error: string } {
  try {
    return { response: make() }
  } catch (err) {
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` }
  }
}

function members (r: Response): unknown[] {
  return [r.status, r.statusText, r.ok, r.type, r.url, r.redirected, r.bodyUsed, [...r.headers]]
}

// ---------------------------------------------------------------------------------------------

describe('light Response: the global', () => {
  it('records simple bodies and stays a Response', async () => {
    const res = new Response('hi')
    assert.ok(isLightResponse(res))
    assert.ok(res instanceof Response)
    assert.ok(res instanceof NativeResponse)
    assert.equal(res.constructor, Response)
    assert.equal(Object.prototype.toString.call(res), '[object Response]')
    assert.equal(Response.prototype, NativeResponse.prototype)
    assert.equal(Response.name, 'Response')
    assert.equal(Response.length, NativeResponse.length)
    assert.equal(await res.text(), 'hi')
    assert.equal(res.bodyUsed, true)
    await assert.rejects(res.text(), TypeError)
    assert.throws(() => res.clone(), TypeError)
  })

  it('real Responses (fetch, statics, subclasses) are instances of the global too', async () => {
    assert.ok(Response.redirect('http://example.com/', 302) instanceof Response)
    assert.equal(Response.redirect('http://example.com/', 307).headers.get('location'), 'http://example.com/')
    const error = Response.error()
    assert.ok(error instanceof Response)
    assert.equal(error.type, 'error')
    class Mine extends Response {
      extra = 1
      constructor (body: string) {
        super(body, { status: 201 })
      }

      shout (): Promise<string> {
        return this.text().then((t) => t.toUpperCase())
      }
    }
    const mine = new Mine('sub')
    assert.ok(mine instanceof Mine)
    assert.ok(mine instanceof Response)
    assert.ok(!isLightResponse(mine), 'a subclass gets undici\'s Response')
    assert.equal(mine.extra, 1)
    assert.equal(mine.status, 201)
    assert.equal(await mine.shout(), 'SUB')
    assert.throws(() => (Response as unknown as () => void)(), /cannot be invoked without 'new'/)
  })

  it('Response.json() is light, with application/json, and fails as undici does', async () => {
    const res = Response.json({ a: [1, 'x'] }, { status: 202, headers: { 'x-j': '1' } })
    assert.ok(isLightResponse(res))
    assert.deepEqual([...res.headers], [['content-type', 'application/json'], ['x-j', '1']])
    assert.deepEqual(await res.json(), { a: [1, 'x'] })
    assert.equal((await Response.json('s').blob()).type, 'application/json')
    assert.throws(() => Response.json(undefined), { name: 'TypeError', message: 'Value is not JSON serializable' })
    assert.throws(() => Response.json(1n), TypeError)
    assert.throws(() => Response.json({}, { status: 204 }), TypeError)
    assert.throws(() => (Response.json as () => Response)(), TypeError)
    assert.equal(Response.json.length, NativeResponse.json.length)
  })

  it('other bodies and inits go to undici', async () => {
    const stream = new ReadableStream<Uint8Array>({ start (c) { c.enqueue(new Uint8Array([104, 105])); c.close() } })
    for (const res of [
      new Response(stream),
      new Response(new Blob(['hi'])),
      new Response(new URLSearchParams('a=1')),
      new Response('x', { status: 200.5 }),
      new Response('x', { statusText: 'caf\u00e9' })
    ]) {
      assert.ok(!isLightResponse(res))
      assert.ok(res instanceof Response)
    }
    assert.throws(() => new Response('x', { status: 99 }), RangeError)
    assert.throws(() => new Response('x', { status: 204 }), TypeError)
    assert.throws(() => new Response('x', { headers: { 'bad name': '1' } }), TypeError)
    assert.throws(() => new Response('x', 5 as unknown as ResponseInit), TypeError)
  })

  it('copies bytes at construction, as undici does', async () => {
    const bytes = new Uint8Array([1, 2, 3])
    const res = new Response(bytes)
    bytes[0] = 9
    assert.deepEqual([...new Uint8Array(await res.arrayBuffer())], [1, 2, 3])
    const buffer = new Uint8Array([4, 5]).buffer
    const fromBuffer = new Response(buffer)
    new Uint8Array(buffer)[0] = 0
    assert.deepEqual([...await fromBuffer.bytes()], [4, 5])
  })

  it('headers changed after construction are the ones sent; the object stays the same', async () => {
    const res = new Response('body', { headers: { 'x-a': '1' } })
    const headers = res.headers
    headers.set('x-b', '2')
    headers.append('set-cookie', 'a=1')
    headers.append('set-cookie', 'b=2')
    assert.equal(res.headers, headers)
    const real = new NativeResponse('body', { headers })
    assert.deepEqual(fastOutput(res), await slowOutput(real))

    // Changed after the real Response was built: clone() and blob() see the change.
    const later = new Response('x', { headers: { 'content-type': 'text/a' } })
    later.headers.set('x-before', '1')
    assert.ok(later.body !== null) // builds the real Response
    later.headers.set('content-type', 'text/b')
    const clone = later.clone()
    assert.equal(clone.headers.get('content-type'), 'text/b')
    assert.equal(clone.headers.get('x-before'), '1')
    assert.equal((await later.blob()).type, 'text/b')
  })

  it('clone() gives independent copies, before and after the real Response exists', async () => {
    const res = new Response(new Uint8Array([7, 8]), { status: 203, headers: { 'x-c': '1' } })
    const clone = res.clone()
    assert.ok(clone instanceof Response)
    clone.headers.set('x-c', '2')
    assert.equal(res.headers.get('x-c'), '1')
    assert.deepEqual([...await clone.bytes()], [7, 8])
    assert.equal(clone.status, 203)
    assert.equal(res.bodyUsed, false)
    const again = res.clone()
    assert.deepEqual([...await res.bytes()], [7, 8])
    assert.deepEqual([...await again.bytes()], [7, 8])

    const touched = new Response('t')
    const reader = touched.body?.getReader()
    assert.ok(reader !== undefined)
    assert.throws(() => touched.clone(), TypeError)
  })

  it('as init of another Response, and with its body in another Response (hono\'s c.res = ...)', async () => {
    const res = new Response('copy me', { status: 404, statusText: 'Gone Fishing', headers: { 'x-k': 'v' } })
    const copy = new Response(res.body, res)
    assert.equal(copy.status, 404)
    assert.equal(copy.statusText, 'Gone Fishing')
    assert.equal(copy.headers.get('x-k'), 'v')
    assert.equal(await copy.text(), 'copy me')
  })

  it('once the sender took it, it looks read: bodyUsed, locked body, text() fails', async () => {
    const res = new Response('sent')
    assert.ok(takeLightResponse(res, false) !== null)
    assert.equal(takeLightResponse(res, false), null, 'taken once')
    assert.equal(res.bodyUsed, true)
    assert.equal(res.body?.locked, true)
    await assert.rejects(res.text(), TypeError)

    const head = new Response('head')
    assert.ok(takeLightResponse(head, true) !== null)
    assert.equal(head.bodyUsed, true)
    assert.equal(head.body?.locked, false)

    const dropped = new Response('dropped')
    assert.equal(discardLightResponse(dropped), true)
    assert.equal(dropped.bodyUsed, true)
    assert.equal(takeLightResponse(dropped, false), null)

    const empty = new Response(null)
    assert.ok(takeLightResponse(empty, false) !== null)
    assert.equal(empty.bodyUsed, false)
    assert.equal(empty.body, null)
  })

  it('inspects like a Response', () => {
    assert.match(inspect(new Response('x', { status: 201 })), /^Response \{[\s\S]*status: 201/)
  })

  it('undici-compatible for random bodies and inits (errors, members, CGI bytes)', async () => {
    const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
    const body = fc.oneof(
      fc.constant(undefined), fc.constant(null),
      fc.string({ maxLength: 40 }), fc.string({ unit: anyUnit, maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }).map((u) => u.buffer)
    )
    const name = fc.oneof(fc.constantFrom('content-type', 'Content-Type', 'x-a', 'X-A', 'set-cookie', 'status', 'etag', 'bad name', ''), fc.string({ maxLength: 8 }))
    const value = fc.oneof(fc.constantFrom('v', ' padded\t', 'a\r\nb', 'caf\u00e9', 'x\u0100', ''), fc.string({ maxLength: 8 }))
    // Plain objects of simple headers are recorded without a Headers object: weighted up.
    const simpleName = fc.constantFrom('content-type', 'Content-Type', 'x-a', 'X-A', 'set-cookie', 'status', 'etag', 'cache-control', 'x-z!#')
    const simpleValue = fc.constantFrom('v', 'text/html', 'a=1; Path=/', '', 'no-store', 'in ner\ttab')
    const headers = fc.oneof(
      fc.constant(undefined),
      { arbitrary: fc.dictionary(simpleName, simpleValue, { maxKeys: 5 }), weight: 3 },
      fc.dictionary(name, value, { maxKeys: 4 }),
      fc.array(fc.tuple(name, value), { maxLength: 4 }),
      fc.array(fc.tuple(name, value), { maxLength: 4 }).map((pairs) => { try { return new Headers(pairs) } catch { return undefined } })
    )
    const init = fc.oneof(
      fc.constant(undefined), fc.constant(null),
      fc.record({
        status: fc.oneof(fc.constantFrom(undefined, 200, 201, 204, 205, 304, 404, 599, 600, 99, 200.5, '404', 65736 + 0), fc.integer({ min: 0, max: 1000 })),
        statusText: fc.oneof(fc.constantFrom(undefined, '', 'OK', 'Not Here', 'caf\u00e9', 'a\u0100', 'tab\tok', 'bad\n'), fc.string({ maxLength: 10 })),
        headers
      }, { requiredKeys: [] })
    )
    let lightOnes = 0
    await fc.assert(fc.asyncProperty(body, init, async (b, i) => {
      // Sent before anything reads it (recorded headers go out without a Headers object).
      const untouched = outcome(() => new Response(b as BodyInit, i as ResponseInit))
      const light = outcome(() => new Response(b as BodyInit, i as ResponseInit))
      const real = outcome(() => new NativeResponse(b as BodyInit, i as ResponseInit))
      if ('error' in real) {
        assert.deepEqual(light, real)
        return
      }
      assert.ok('response' in light, `light threw: ${JSON.stringify(light)}`)
      assert.deepEqual(members(light.response), members(real.response))
      const again = new Response(b as BodyInit, i as ResponseInit)
      const expected = await slowOutput(real.response)
      assert.ok('response' in untouched)
      if (isLightResponse(untouched.response)) assert.deepEqual(fastOutput(untouched.response), expected)
      if (isLightResponse(light.response)) {
        lightOnes++
        assert.deepEqual(fastOutput(light.response), expected)
      } else {
        assert.deepEqual(await slowOutput(light.response), expected)
      }
      assert.equal(await again.text(), decoder.decode(new Uint8Array(expected.body)))
    }), { numRuns: 400 })
    assert.ok(lightOnes > 40, `${lightOnes} of the 400 runs were light`)
    assert.ok(sentFromPairs > 5, `${sentFromPairs} of the 400 runs were sent from recorded header pairs`)
  })

  it('encodes long strings (past the scratch buffer) and lone surrogates as undici does', async () => {
    for (const text of ['\u00e9'.repeat(30000), 'x'.repeat(70000), 'a\ud800b\udc00c\ud83d\ude00']) {
      assert.deepEqual(fastOutput(new Response(text)), await slowOutput(new NativeResponse(text)))
    }
  })
})

// ---------------------------------------------------------------------------------------------

function lightRequest (method: string, body: Uint8Array | ReadableStream<Uint8Array> | null, headers: Record<string, string> = {}, signal: SignalSource = new AbortController()): Request {
  const params = ['REQUEST_METHOD', method, 'HTTP_HOST', 'h.example', 'REQUEST_URI', '/p/../q?x=1']
  for (const [k, v] of Object.entries(headers)) params.push(k, v)
  const request = createRequest(cgiRequestParts(params), body, signal)
  assert.ok(request !== null)
  return request
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('light Request', () => {
  it('is a Request: members, instanceof, inspect', () => {
    const request = lightRequest('GET', null, { HTTP_X_A: '1', HTTP_ACCEPT: '*/*' })
    assert.ok(isLightRequest(request))
    assert.ok(request instanceof Request)
    assert.ok(request instanceof NativeRequest)
    assert.equal(request.constructor, Request)
    assert.equal(Object.prototype.toString.call(request), '[object Request]')
    assert.equal(Request.prototype, NativeRequest.prototype)
    assert.equal(request.method, 'GET')
    assert.equal(request.url, 'http://h.example/q?x=1', 'as the URL parser serializes it')
    assert.deepEqual([...request.headers], [['accept', '*/*'], ['host', 'h.example'], ['x-a', '1']])
    assert.equal(request.headers, request.headers)
    assert.equal(request.body, null)
    assert.equal(request.bodyUsed, false)
    assert.equal(request.cache, 'default')
    assert.equal(request.credentials, 'same-origin')
    assert.equal(request.redirect, 'follow')
    assert.equal(request.keepalive, false)
    assert.match(inspect(request), /^Request \{[\s\S]*method: 'GET'/)
  })

  it('normalizes methods as undici does', () => {
    for (const method of ['get', 'Post', 'delete', 'options', 'put', 'head', 'patch', 'PATCH', 'PROPFIND', 'm-search']) {
      assert.equal(lightRequest(method, null).method, new NativeRequest('http://x/', { method }).method, method)
    }
  })

  it('reads the body: text, json, arrayBuffer, bytes, blob, formData; bodyUsed', async () => {
    const post = (s: string, type = 'text/plain'): Request => lightRequest('POST', utf8(s), { CONTENT_TYPE: type })
    const a = post('hello')
    assert.equal(a.bodyUsed, false)
    assert.equal(await a.text(), 'hello')
    assert.equal(a.bodyUsed, true)
    await assert.rejects(a.text(), TypeError)
    assert.deepEqual(await post('{"k":[1]}', 'application/json').json(), { k: [1] })
    assert.deepEqual([...new Uint8Array(await post('ab').arrayBuffer())], [97, 98])
    assert.deepEqual([...await post('ab').bytes()], [97, 98])
    assert.equal((await post('ab', 'text/x-mine').blob()).type, 'text/x-mine')
    const form = await post('a=1&b=%C3%A9', 'application/x-www-form-urlencoded').formData()
    assert.equal(form.get('b'), '\u00e9')
    const fd = new FormData()
    fd.append('f', 'v')
    fd.append('file', new Blob(['content'], { type: 'text/plain' }), 'a.txt')
    const encoded = new NativeRequest('http://x/', { method: 'POST', body: fd })
    const raw = new Uint8Array(await encoded.arrayBuffer())
    const parsed = await lightRequest('POST', raw, { CONTENT_TYPE: encoded.headers.get('content-type') ?? '' }).formData()
    assert.equal(parsed.get('f'), 'v')
    assert.equal(await (parsed.get('file') as File).text(), 'content')
  })

  it('reads a whole body without copying it, then looks read as undici\'s does', async () => {
    const bytes = utf8('whole body')
    const request = lightRequest('POST', bytes)
    const buffer = await request.arrayBuffer()
    assert.equal(buffer, bytes.buffer, 'the bytes the server buffered, not a copy')
    assert.equal(request.bodyUsed, true)
    await assert.rejects(request.arrayBuffer(), { name: 'TypeError', message: 'Body is unusable: Body has already been read' })
    await assert.rejects(request.text(), TypeError)
    await assert.rejects(request.blob(), TypeError)
    assert.throws(() => request.clone(), TypeError)
    assert.ok(request.body !== null && request.body.locked)
    assert.throws(() => new Request(request), TypeError)
    await assert.rejects(fetch(request), TypeError)

    // Bytes that do not span their buffer are copied; a null body reads empty and is never used.
    const backing = utf8('..part..')
    const part = await lightRequest('POST', backing.subarray(2, 6)).bytes()
    assert.notEqual(part.buffer, backing.buffer)
    assert.deepEqual([...part], [...utf8('part')])
    const none = lightRequest('GET', null)
    assert.equal((await none.arrayBuffer()).byteLength, 0)
    assert.equal(await none.text(), '')
    await assert.rejects(none.json(), SyntaxError)
    assert.equal(none.bodyUsed, false)
  })

  it('text() and json() decode as undici does (BOM, bad UTF-8, bad JSON)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom([0xef, 0xbb, 0xbf, 0x41], [0xff, 0x7b, 0x7d], [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d], [0xef, 0xbb, 0xbf, 0x5b, 0x5d]).map(b => new Uint8Array(b))),
      fc.constantFrom('text', 'json', 'bytes'),
      async (raw, reader) => {
        const outcome = async (r: Request): Promise<unknown> => {
          try {
            const v: unknown = await (r as unknown as Record<string, () => Promise<unknown>>)[reader]!()
            return ['ok', v instanceof Uint8Array ? [...v] : v]
          } catch (err) {
            return ['error', (err as Error).name]
          }
        }
        const light = lightRequest('POST', new Uint8Array(raw))
        const native = new NativeRequest('http://h.example/', { method: 'POST', body: new Uint8Array(raw) })
        assert.deepEqual(await outcome(light), await outcome(native))
        assert.equal(light.bodyUsed, native.bodyUsed)
      }))
  })

  it('a streaming body: body is the stream the handler reads', async () => {
    const stream = new ReadableStream<Uint8Array>({ start (c) { c.enqueue(utf8('str')); c.enqueue(utf8('eam')); c.close() } })
    const request = lightRequest('PUT', stream)
    assert.ok(request.body !== null)
    assert.equal(request.body, request.body)
    assert.equal(await new Response(request.body).text(), 'stream')
    assert.equal(request.bodyUsed, true)
  })

  it('clone() reads twice, keeps the signal and the headers changed before', async () => {
    const controller = new AbortController()
    const request = lightRequest('POST', utf8('twice'), { CONTENT_TYPE: 'text/plain' }, controller)
    request.headers.set('x-added', 'yes')
    const clone = request.clone()
    assert.ok(clone instanceof Request)
    assert.equal(clone.headers.get('x-added'), 'yes')
    assert.equal(await clone.text(), 'twice')
    assert.equal(await request.text(), 'twice')
    assert.equal(clone.signal, request.signal)
    controller.abort(new Error('gone'))
    assert.equal(request.signal.aborted, true)
  })

  it('new Request(request, init) and fetch(request) get the real Request with the current headers', async () => {
    const request = lightRequest('POST', utf8('payload'), { CONTENT_TYPE: 'text/plain', HTTP_X_KEEP: 'k' })
    request.headers.set('x-late', 'l')
    const copy = new Request(request, { headers: { 'x-only': '1' } })
    assert.ok(copy instanceof Request)
    assert.equal(copy.method, 'POST')
    assert.equal(copy.url, request.url)
    assert.deepEqual([...copy.headers], [['x-only', '1']])
    assert.equal(await copy.text(), 'payload')
    const plain = new Request(lightRequest('GET', null, { HTTP_X_LATE: 'no' }))
    assert.equal(plain.headers.get('x-late'), 'no')

    class MyRequest extends Request {}
    const mine = new MyRequest(lightRequest('GET', null))
    assert.ok(mine instanceof MyRequest)
    assert.equal(mine.url, 'http://h.example/q?x=1')

    const { createServer } = await import('node:http')
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => { body += c.toString() })
      req.on('end', () => { res.end(JSON.stringify({ method: req.method, url: req.url, late: req.headers['x-late'], body })) })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as { port: number }).port
      const params = ['REQUEST_METHOD', 'POST', 'HTTP_HOST', `127.0.0.1:${port}`, 'REQUEST_URI', '/echo?q', 'CONTENT_TYPE', 'text/plain']
      const outgoing = createRequest(cgiRequestParts(params), utf8('to upstream'), new AbortController())
      assert.ok(outgoing !== null)
      outgoing.headers.set('x-late', 'yes')
      const res = await fetch(outgoing)
      assert.deepEqual(await res.json(), { method: 'POST', url: '/echo?q', late: 'yes', body: 'to upstream' })
      assert.equal(outgoing.bodyUsed, true)
      assert.equal(fetch.length, nativeFetch.length)
    } finally {
      server.close()
    }
  })
})
