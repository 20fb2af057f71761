import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildCgiParams, findCgiHeadEnd, parseCgiResponse } from '../../../src/client/fcgi-client.ts'

test('parseCgiResponse: Status header, CRLF and LF lines, header order kept', () => {
  const r = parseCgiResponse(Buffer.from('Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A:  1 \nX-A: 2\r\n\r\nnope\r\n\r\n'))
  assert.equal(r.status, 404)
  assert.equal(r.statusText, 'Not Found')
  assert.deepEqual(r.headers, [['Content-Type', 'text/plain'], ['X-A', '1'], ['X-A', '2']])
  assert.equal(r.body.toString(), 'nope\r\n\r\n')
})

test('parseCgiResponse: no Status is 200, Location without Status is 302, a bare code gets its reason', () => {
  assert.equal(parseCgiResponse(Buffer.from('Content-Type: text/html\n\n')).status, 200)
  const redirect = parseCgiResponse(Buffer.from('Location: http://example.com/\r\n\r\n'))
  assert.equal(redirect.status, 302)
  assert.equal(redirect.statusText, 'Found')
  assert.equal(parseCgiResponse(Buffer.from('status: 503\r\n\r\n')).statusText, 'Service Unavailable')
  assert.equal(parseCgiResponse(Buffer.from('\r\nbody only')).body.toString(), 'body only')
})

test('parseCgiResponse: malformed responses throw FPM_ERR_CLIENT', () => {
  for (const [text, re] of [
    ['', /empty STDOUT/],
    ['Content-Type: text/plain\r\n', /does not end with an empty line/],
    ['Hello, World!', /does not end with an empty line/],
    ['no colon here\r\n\r\n', /header line without a name/],
    ['Status: abc\r\n\r\n', /bad Status header/]
  ] as const) {
    assert.throws(() => parseCgiResponse(Buffer.from(text)), (err: Error & { code?: string }) => err.code === 'FPM_ERR_CLIENT' && re.test(err.message), text)
  }
})

test('findCgiHeadEnd', () => {
  assert.equal(findCgiHeadEnd(Buffer.from('A: b\r\n\r\nx')), 8)
  assert.equal(findCgiHeadEnd(Buffer.from('A: b\n\nx')), 6)
  assert.equal(findCgiHeadEnd(Buffer.from('A: b\r\n')), -1)
  assert.equal(findCgiHeadEnd(Buffer.from('')), -1)
})

test('buildCgiParams: what nginx fastcgi_params sends', () => {
  const p = buildCgiParams({
    uri: '/app/caf%C3%A9.mjs?x=1&y=%20',
    method: 'post',
    documentRoot: '/srv/www/',
    headers: [['Host', 'example.com:8080'], ['Content-Type', 'text/plain'], ['Content-Length', '5'], ['X-Forwarded-For', 'a'], ['x-forwarded-for', 'b'], ['Cookie', 'a=1'], ['Cookie', 'b=2']],
    serverPort: 8080
  })
  assert.equal(p.REQUEST_METHOD, 'POST')
  assert.equal(p.REQUEST_URI, '/app/caf%C3%A9.mjs?x=1&y=%20')
  assert.equal(p.QUERY_STRING, 'x=1&y=%20')
  assert.equal(p.SCRIPT_NAME, '/app/caf\xc3\xa9.mjs') // decoded, UTF-8 bytes as latin1 chars
  assert.equal(p.DOCUMENT_URI, p.SCRIPT_NAME)
  assert.equal(p.SCRIPT_FILENAME, '/srv/www/app/caf\xc3\xa9.mjs')
  assert.equal(p.DOCUMENT_ROOT, '/srv/www/')
  assert.equal(p.CONTENT_TYPE, 'text/plain')
  assert.equal(p.CONTENT_LENGTH, '5')
  assert.equal(p.HTTP_HOST, 'example.com:8080')
  assert.equal(p.SERVER_NAME, 'example.com')
  assert.equal(p.SERVER_PORT, '8080')
  assert.equal(p.HTTP_X_FORWARDED_FOR, 'a, b')
  assert.equal(p.HTTP_COOKIE, 'a=1; b=2')
  assert.equal(p.HTTP_CONTENT_TYPE, undefined)
  for (const k of ['SERVER_PROTOCOL', 'REQUEST_SCHEME', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_ADDR']) {
    assert.equal(typeof p[k], 'string', k)
  }
  assert.equal(p.GATEWAY_INTERFACE, 'CGI/1.1')
})

test('buildCgiParams: defaults, scriptFilename, UTF-8 headers, extra overrides', () => {
  const d = buildCgiParams({ uri: '/index.mjs' })
  assert.equal(d.REQUEST_METHOD, 'GET')
  assert.equal(d.SCRIPT_FILENAME, '/index.mjs')
  assert.equal(d.QUERY_STRING, '')
  assert.equal(d.CONTENT_LENGTH, '')
  assert.equal(d.CONTENT_TYPE, '')
  assert.equal(d.HTTP_HOST, 'localhost')
  assert.equal(d.SERVER_NAME, 'localhost')
  assert.equal(d.SERVER_PORT, '80')
  const p = buildCgiParams({ uri: '/', scriptFilename: '/a/b.mjs', bodyLength: 0, headers: [['X-Name', 'é']], extra: { SERVER_NAME: 'override', HTTPS: 'on' } })
  assert.equal(p.SCRIPT_FILENAME, '/a/b.mjs')
  assert.equal(p.CONTENT_LENGTH, '0')
  assert.equal(p.HTTP_X_NAME, '\xc3\xa9')
  assert.equal(p.SERVER_NAME, 'override')
  assert.equal(p.HTTPS, 'on')
  assert.equal(buildCgiParams({ uri: '/', headers: [['Host', '[::1]:9000']] }).SERVER_NAME, '[::1]')
})
