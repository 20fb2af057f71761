// CGI params -> Web Request: URL building, headers, method handling (pure functions).

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MessageChannel } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { cgiRequestParts, createRequest, encodeTarget, RequestBodyStream } from '../../../src/worker/cgi-request.ts'
import { headerNameOf } from '../../../src/common/params-shape.ts'
import { BODY_PULL_BYTES, Msg } from '../../../src/common/messages.ts'
import type { PullMessage } from '../../../src/common/messages.ts'

function params (record: Record<string, string>): string[] {
  const flat: string[] = []
  for (const [name, value] of Object.entries(record)) flat.push(name, value)
  return flat
}

function url (record: Record<string, string>): string {
  return cgiRequestParts(params(record)).url
}

describe('cgiRequestParts: URL', () => {
  it('uses HTTP_HOST and REQUEST_URI as they are', () => {
    assert.equal(url({ HTTP_HOST: 'example.com', REQUEST_URI: '/a/b?x=1&y=2' }), 'http://example.com/a/b?x=1&y=2')
    assert.equal(url({ HTTP_HOST: 'example.com:8080', REQUEST_URI: '/' }), 'http://example.com:8080/')
  })

  it('picks the scheme from REQUEST_SCHEME, else HTTPS (not off/empty)', () => {
    assert.equal(url({ REQUEST_SCHEME: 'https', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'https://h/')
    assert.equal(url({ REQUEST_SCHEME: 'HTTP', HTTPS: 'on', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'http://h/')
    assert.equal(url({ HTTPS: 'on', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'https://h/')
    assert.equal(url({ HTTPS: '1', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'https://h/')
    assert.equal(url({ HTTPS: 'off', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'http://h/')
    assert.equal(url({ HTTPS: 'OFF', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'http://h/')
    assert.equal(url({ HTTPS: '', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'http://h/')
    // Not a scheme we serve: ignored, HTTPS decides.
    assert.equal(url({ REQUEST_SCHEME: 'http://evil/x?', HTTPS: 'on', HTTP_HOST: 'h', REQUEST_URI: '/' }), 'https://h/')
  })

  it('falls back to SERVER_NAME with SERVER_PORT unless it is the default port', () => {
    assert.equal(url({ SERVER_NAME: 'srv', SERVER_PORT: '80', REQUEST_URI: '/p' }), 'http://srv/p')
    assert.equal(url({ SERVER_NAME: 'srv', SERVER_PORT: '8080', REQUEST_URI: '/p' }), 'http://srv:8080/p')
    assert.equal(url({ HTTPS: 'on', SERVER_NAME: 'srv', SERVER_PORT: '443', REQUEST_URI: '/p' }), 'https://srv/p')
    assert.equal(url({ HTTPS: 'on', SERVER_NAME: 'srv', SERVER_PORT: '80', REQUEST_URI: '/p' }), 'https://srv:80/p')
    assert.equal(url({ SERVER_NAME: 'srv', REQUEST_URI: '/p' }), 'http://srv/p')
    assert.equal(url({ SERVER_NAME: '::1', SERVER_PORT: '9000', REQUEST_URI: '/p' }), 'http://[::1]:9000/p')
  })

  it('uses localhost and / when nothing is given', () => {
    assert.equal(url({}), 'http://localhost/')
    assert.equal(url({ SERVER_PORT: '8080' }), 'http://localhost/')
  })

  it('builds the path from SCRIPT_NAME + PATH_INFO + QUERY_STRING without REQUEST_URI', () => {
    assert.equal(url({ HTTP_HOST: 'h', SCRIPT_NAME: '/app.mjs', PATH_INFO: '/users/7', QUERY_STRING: 'q=1' }), 'http://h/app.mjs/users/7?q=1')
    assert.equal(url({ HTTP_HOST: 'h', SCRIPT_NAME: '/app.mjs', QUERY_STRING: '' }), 'http://h/app.mjs')
  })

  it('percent-encodes bytes >= 0x80 as the byte itself (byte-exact, not UTF-8 of the latin1 char)', () => {
    // The latin1 decoding of the UTF-8 bytes of "é" (C3 A9) and a raw latin1 0xE9 byte.
    assert.equal(url({ HTTP_HOST: 'h', REQUEST_URI: '/caf\u00c3\u00a9?q=\u00e9' }), 'http://h/caf%C3%A9?q=%E9')
    const u = new URL(url({ HTTP_HOST: 'h', REQUEST_URI: '/caf\u00c3\u00a9' }))
    assert.equal(decodeURIComponent(u.pathname), '/café')
  })

  it('keeps controls, spaces, "#" and "\\" as bytes instead of letting the URL parser drop or rewrite them', () => {
    assert.equal(url({ HTTP_HOST: 'h', REQUEST_URI: '/a b\tc#d\\e' }), 'http://h/a%20b%09c%23d%5Ce')
    assert.equal(encodeTarget('/plain?x=1'), '/plain?x=1')
  })

  it('ignores an implausible HTTP_HOST (it could move the path) and uses SERVER_NAME', () => {
    assert.equal(url({ HTTP_HOST: 'evil.com/admin?', SERVER_NAME: 'srv', REQUEST_URI: '/x' }), 'http://srv/x')
    assert.equal(url({ HTTP_HOST: 'a b', REQUEST_URI: '/x' }), 'http://localhost/x')
    assert.equal(url({ HTTP_HOST: 'user@h', REQUEST_URI: '/x' }), 'http://localhost/x')
    assert.equal(url({ HTTP_HOST: 'h\u00e9', REQUEST_URI: '/x' }), 'http://localhost/x')
    assert.equal(url({ HTTP_HOST: '[::1]:8080', REQUEST_URI: '/x' }), 'http://[::1]:8080/x')
  })

  it('falls back to http://localhost + path when the URL still does not parse', () => {
    assert.equal(url({ HTTP_HOST: 'h:99999', REQUEST_URI: '/x?y' }), 'http://localhost/x?y')
    assert.equal(url({ SERVER_NAME: 'srv', SERVER_PORT: 'abc', REQUEST_URI: '/x' }), 'http://localhost/x')
  })

  it('takes an absolute-form REQUEST_URI as the URL, and prefixes "/" to other non-origin forms', () => {
    assert.equal(url({ HTTP_HOST: 'ignored', REQUEST_URI: 'http://other.example/p?q' }), 'http://other.example/p?q')
    assert.equal(new URL(url({ HTTP_HOST: 'ignored', REQUEST_URI: 'HTTPS://other.example/p' })).href, 'https://other.example/p')
    assert.equal(url({ HTTP_HOST: 'h', REQUEST_URI: '*' }), 'http://h/*')
    assert.equal(url({ HTTP_HOST: 'h', REQUEST_URI: 'http://bad host/' }), 'http://localhost/')
  })
})

describe('cgiRequestParts: method and headers', () => {
  it('defaults the method to GET and knows which methods carry a body', () => {
    assert.equal(cgiRequestParts([]).method, 'GET')
    assert.equal(cgiRequestParts([]).hasBody, false)
    assert.equal(cgiRequestParts(params({ REQUEST_METHOD: 'head' })).hasBody, false)
    assert.equal(cgiRequestParts(params({ REQUEST_METHOD: 'POST' })).hasBody, true)
    assert.equal(cgiRequestParts(params({ REQUEST_METHOD: 'PROPFIND' })).hasBody, true)
  })

  it('maps HTTP_* to header names and adds CONTENT_TYPE / CONTENT_LENGTH when not empty', () => {
    const parts = cgiRequestParts(params({
      HTTP_HOST: 'h',
      HTTP_X_FORWARDED_FOR: '10.0.0.1',
      HTTP_ACCEPT_LANGUAGE: 'fr',
      HTTP_CONTENT_TYPE: 'ignored/x',
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: '',
      REMOTE_ADDR: '1.2.3.4'
    }))
    assert.deepEqual(parts.headers, ['host', 'h', 'x-forwarded-for', '10.0.0.1', 'accept-language', 'fr', 'content-type', 'text/plain'])
    // Params of the same length as CONTENT_LENGTH (14) around it are not taken for it.
    const sized = cgiRequestParts(params({ REQUEST_SCHEME: 'https', CONTENT_LENGTH: '42', REQUEST_METHOD: 'PUT', HTTP_HOST: 'h', REQUEST_URI: '/' }))
    assert.deepEqual(sized.headers, ['host', 'h', 'content-length', '42'])
    assert.equal(sized.method, 'PUT')
    assert.equal(sized.url, 'https://h/')
    assert.equal(headerNameOf('HTTP_X_A_B'), 'x-a-b')
  })

  it('a later duplicate param wins', () => {
    assert.equal(url({ HTTP_HOST: 'h', REQUEST_URI: '/first' }).endsWith('/first'), true)
    assert.equal(cgiRequestParts(['REQUEST_URI', '/first', 'REQUEST_URI', '/second']).url, 'http://localhost/second')
  })
})

describe('createRequest', () => {
  const signal = new AbortController()

  it('builds a Request with latin1 header values kept byte for byte', async () => {
    const parts = cgiRequestParts(params({ REQUEST_METHOD: 'POST', HTTP_HOST: 'h', REQUEST_URI: '/p', HTTP_X_NAME: 'Jos\u00e9', CONTENT_TYPE: 'text/plain' }))
    const request = createRequest(parts, new TextEncoder().encode('body'), signal)
    assert.ok(request !== null)
    assert.equal(request.method, 'POST')
    assert.equal(request.url, 'http://h/p')
    assert.equal(request.headers.get('x-name'), 'Jos\u00e9')
    assert.equal(request.headers.get('content-type'), 'text/plain')
    assert.equal(await request.text(), 'body')
    assert.equal(request.signal.aborted, false)
  })

  it('skips header values the Headers class refuses, keeps the others, never throws', () => {
    const parts = cgiRequestParts(params({ HTTP_X_OK: 'fine', HTTP_X_NUL: 'a\u0000b', HTTP_X_LF: 'a\nb', HTTP_X_CR: 'a\rb', HTTP_X_AFTER: 'kept' }))
    const request = createRequest(parts, null, signal)
    assert.ok(request !== null)
    assert.deepEqual([...request.headers], [['x-after', 'kept'], ['x-ok', 'fine']])
  })

  it('drops the body of GET and HEAD requests', () => {
    const request = createRequest(cgiRequestParts(params({ REQUEST_METHOD: 'GET' })), new Uint8Array([1]), signal)
    assert.equal(request?.body, null)
  })

  it('returns null for methods the Fetch API refuses', () => {
    for (const method of ['TRACE', 'CONNECT', 'TRACK', 'BAD METHOD']) {
      assert.equal(createRequest(cgiRequestParts(params({ REQUEST_METHOD: method })), null, signal), null, method)
    }
    assert.equal(createRequest(cgiRequestParts(params({ REQUEST_METHOD: 'PROPFIND' })), null, signal)?.method, 'PROPFIND')
  })

  it('links the signal', () => {
    const controller = new AbortController()
    const request = createRequest(cgiRequestParts([]), null, controller)
    controller.abort(new Error('gone'))
    assert.equal(request?.signal.aborted, true)
  })
})

describe('RequestBodyStream', () => {
  function setup (): { body: RequestBodyStream, pulls: PullMessage[], port: MessagePort, close: () => void } {
    const { port1, port2 } = new MessageChannel()
    const pulls: PullMessage[] = []
    port2.on('message', (msg: PullMessage) => pulls.push(msg))
    return { body: new RequestBodyStream(9, port1), pulls, port: port1, close: () => { port1.close(); port2.close() } }
  }
  const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

  it('asks for nothing before the first read, then one PULL per credit window', async () => {
    const { body, pulls, close } = setup()
    await tick()
    assert.equal(pulls.length, 0)
    const reader = body.stream.getReader()
    const first = reader.read()
    await tick()
    assert.deepEqual(pulls, [{ t: Msg.PULL, id: 9, bytes: BODY_PULL_BYTES }])
    const half = new Uint8Array(BODY_PULL_BYTES / 2)
    body.push({ t: Msg.BODY, id: 9, body: half, end: false, error: null })
    assert.equal((await first).value?.byteLength, BODY_PULL_BYTES / 2)
    // Credit is still outstanding: reading again must not ask for more.
    const second = reader.read()
    await tick()
    assert.equal(pulls.length, 1)
    body.push({ t: Msg.BODY, id: 9, body: new Uint8Array(BODY_PULL_BYTES / 2), end: false, error: null })
    assert.equal((await second).value?.byteLength, BODY_PULL_BYTES / 2)
    // Credit used up: the next read asks again.
    const third = reader.read()
    await tick()
    assert.equal(pulls.length, 2)
    body.push({ t: Msg.BODY, id: 9, body: new Uint8Array([1, 2, 3]), end: true, error: null })
    assert.deepEqual([...(await third).value ?? []], [1, 2, 3])
    assert.equal((await reader.read()).done, true)
    close()
  })

  it('errors the stream with an Error whose code is the BODY error', async () => {
    const { body, close } = setup()
    const reader = body.stream.getReader()
    const read = reader.read()
    body.push({ t: Msg.BODY, id: 9, body: null, end: false, error: 'FPM_ERR_BODY_TOO_LARGE' })
    await assert.rejects(read, { code: 'FPM_ERR_BODY_TOO_LARGE' })
    close()
  })

  it('fail() errors a pending read; later BODY messages are ignored', async () => {
    const { body, close } = setup()
    const reader = body.stream.getReader()
    const read = reader.read()
    body.fail(Object.assign(new Error('aborted'), { code: 'FPM_ERR_REQUEST_ABORTED' }))
    await assert.rejects(read, { code: 'FPM_ERR_REQUEST_ABORTED' })
    body.push({ t: Msg.BODY, id: 9, body: new Uint8Array(1), end: true, error: null })
    close()
  })
})
