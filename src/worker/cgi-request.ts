// FastCGI params (CGI/1.1 meta-variables, RFC 3875 §4.1) -> the Web `Request` a handler receives,
// plus the streaming request body fed by the worker's channel (PULL/BODY, common/messages.ts).
// Pure functions except RequestBodyStream, which posts PULL messages. Runs on every request: no
// regexes, no pass over the params: what it reads is where the params' shape says (common/params-shape.ts).
//
// Decisions (documented here because they differ from a literal CGI reading):
// - The URL is byte-exact: every byte >= 0x80 of the latin1 params is percent-encoded as that byte
//   (%E9), as are controls, space, '#' and '\' (a request target cannot hold a fragment, and the
//   WHATWG parser would turn '\' into '/' or strip tabs). Everything else is left to the URL parser.
// - HTTP_HOST is used only when it is a plausible authority (no '/', '?', '#', '@', '\', '%',
//   whitespace, controls or non-ASCII); otherwise SERVER_NAME[:SERVER_PORT], then 'localhost'.
//   The `host` header itself still carries what the client sent.
// - An absolute-form REQUEST_URI (`http://host/path`, RFC 9112 §3.2.2) is the URL as is.
// - A URL the parser still refuses falls back to `http://localhost` + the path (or
//   `http://localhost/`): the request goes on, the handler sees the path.
// - HTTP_CONTENT_TYPE / HTTP_CONTENT_LENGTH are ignored (RFC 3875 §4.1.18: CONTENT_* carry them).
// - A method the Fetch API refuses (CONNECT, TRACE, TRACK, a non-token) makes createRequest return
//   null: the caller answers 501 Not Implemented without running the handler.
// - A header the Headers class refuses (a value with NUL/CR/LF, a name that is not a token) is
//   dropped; the others are kept.

import { BODY_PULL_BYTES, Msg } from '../common/messages.ts'
import type { BodyMessage, PullMessage } from '../common/messages.ts'
import { FpmError } from '../common/errors.ts'
import type { FpmErrorCode } from '../common/errors.ts'
import type { MessagePort } from 'node:worker_threads'
import type { UnderlyingSource } from 'node:stream/web'
import { LightRequest, normalizeMethod } from './light-request.ts'
import type { SignalSource } from './light-request.ts'
import { isCanonicalHttpUrl } from './canonical-url.ts'
import { shapeOf, valueAt, type ParamsShape } from '../common/params-shape.ts'

export interface CgiRequestParts {
  readonly method: string
  /** Absolute, as the URL parser serializes it (its `href`). */
  readonly url: string
  /** Flat [name0, value0, name1, value1, ...], names lower-case, in param order. */
  readonly headers: string[]
  /** False for GET and HEAD: the Fetch API forbids a body there. */
  readonly hasBody: boolean
}

const HEX: string[] = []
for (let i = 0; i < 256; i++) HEX.push('%' + (i < 16 ? '0' : '') + i.toString(16).toUpperCase())

/**
 * The parts of the Request in `params` (flat pairs), read where `shape` says (common/params-shape.ts).
 * Later duplicates win, as in php's $_SERVER; an empty REQUEST_METHOD does not count.
 */
export function cgiRequestParts (params: readonly string[], shape: ParamsShape = shapeOf(params)): CgiRequestParts {
  let method = 'GET'
  const methods = shape.requestMethods
  for (let i = methods.length - 1; i >= 0; i--) {
    const value = params[methods[i]!]!
    if (value !== '') { method = value; break }
  }
  const host = valueAt(params, shape.httpHost, '')
  const contentType = valueAt(params, shape.contentType, '')
  const contentLength = valueAt(params, shape.contentLength, '')
  const headerAt = shape.headerAt
  const headerNames = shape.headerNames
  const headers: string[] = new Array<string>(2 * headerAt.length)
  for (let i = 0; i < headerAt.length; i++) {
    headers[2 * i] = headerNames[i]!
    headers[2 * i + 1] = params[headerAt[i]!]!
  }
  if (contentType !== '') headers.push('content-type', contentType)
  if (contentLength !== '') headers.push('content-length', contentLength)

  let scheme = valueAt(params, shape.requestScheme, '')
  const https = valueAt(params, shape.https, '')
  const serverName = valueAt(params, shape.serverName, '')
  const serverPort = valueAt(params, shape.serverPort, '')
  const requestUri = valueAt(params, shape.requestUri, '')
  const scriptName = valueAt(params, shape.scriptName, '')
  const pathInfo = valueAt(params, shape.pathInfo, '')
  const queryString = valueAt(params, shape.queryString, '')
  const lower = scheme.toLowerCase()
  if (lower === 'http' || lower === 'https') scheme = lower
  else scheme = https !== '' && https.toLowerCase() !== 'off' ? 'https' : 'http'

  let path = requestUri !== ''
    ? requestUri
    : scriptName + pathInfo + (queryString !== '' ? '?' + queryString : '')
  let url: string
  let fallback = 'http://localhost/'
  if (isAbsoluteHttpUrl(path)) {
    url = encodeTarget(path)
  } else {
    path = path === '' ? '/' : encodeTarget(path.charCodeAt(0) === 0x2f ? path : '/' + path)
    const hostPort = authority(scheme, host, serverName, serverPort)
    url = scheme + '://' + hostPort + path
    if (isCanonicalHttpUrl(scheme, hostPort, path)) {
      return { method, url, headers, hasBody: hasBody(method) }
    }
    fallback = 'http://localhost' + path
  }
  // As the URL parser serializes it (Request.url shows exactly this, light-request.ts): the common URL
  // already is (canonical-url.ts); the rest goes through the parser.
  url = (URL.parse(url) ?? URL.parse(fallback))?.href ?? 'http://localhost/'
  return { method, url, headers, hasBody: hasBody(method) }
}

function hasBody (method: string): boolean {
  const upper = method.length <= 4 ? method.toUpperCase() : ''
  return upper !== 'GET' && upper !== 'HEAD'
}

function authority (scheme: string, host: string, serverName: string, serverPort: string): string {
  if (host !== '' && isPlausibleHost(host)) return host
  if (serverName === '' || !isPlausibleHost(serverName)) return 'localhost'
  // A bare IPv6 address needs brackets in a URL.
  const name = serverName.includes(':') && serverName.charCodeAt(0) !== 0x5b ? '[' + serverName + ']' : serverName
  if (serverPort === '' || (scheme === 'http' && serverPort === '80') || (scheme === 'https' && serverPort === '443')) return name
  return name + ':' + serverPort
}

function isPlausibleHost (host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f || c === 0x2f || c === 0x3f || c === 0x23 || c === 0x40 || c === 0x5c || c === 0x25) return false
  }
  return true
}

function isAbsoluteHttpUrl (target: string): boolean {
  const c = target.charCodeAt(0)
  if (c !== 0x68 && c !== 0x48) return false // 'h' / 'H'
  const head = target.slice(0, 8).toLowerCase()
  return head.startsWith('http://') || head === 'https://'
}

/** Percent-encodes what would make the URL parser lose or change bytes (see the file comment). */
export function encodeTarget (target: string): string {
  let i = 0
  for (; i < target.length; i++) {
    if (mustEncode(target.charCodeAt(i))) break
  }
  if (i === target.length) return target
  let out = target.slice(0, i)
  for (; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (!mustEncode(c)) out += target[i]
    else if (c <= 0xff) out += HEX[c]
    else out += encodeWide(target, i) // not latin1: cannot happen with params decoded as latin1
  }
  return out
}

function mustEncode (c: number): boolean {
  return c <= 0x20 || c >= 0x7f || c === 0x23 || c === 0x5c
}

function encodeWide (target: string, i: number): string {
  try {
    return encodeURIComponent(target[i] as string)
  } catch {
    return '%EF%BF%BD' // lone surrogate: U+FFFD
  }
}

/**
 * The Request a handler receives (a light one: light-request.ts); null when the Fetch API refuses
 * the method. A header value the Headers class refuses is skipped (never thrown).
 *
 * `signal` is not given to undici (in the init it builds a dependent signal: a controller, a
 * listener and a weak reference per request): the request's `signal` is ours. Consequence:
 * fetch(request) made by the handler does not follow it (pass { signal: request.signal } when proxying).
 */
export function createRequest (parts: CgiRequestParts, body: Uint8Array | ReadableStream<Uint8Array> | null, signalSource: SignalSource): Request | null {
  const method = normalizeMethod(parts.method)
  if (method === null) return null
  return new LightRequest(method, parts.url, parts.headers, parts.hasBody ? body : null, signalSource) as unknown as Request
}

/**
 * The streaming request body: a pull-based ReadableStream over the channel. On the first read it
 * posts PULL {bytes: BODY_PULL_BYTES}; BODY chunks are enqueued as they come and count against
 * that credit; a new PULL goes out only when the credit is used up and the reader wants more.
 * highWaterMark 0: nothing is asked for before the handler reads.
 */
/** What a handler reading the body is told, by the code the server sent. */
const BODY_ERRORS: Readonly<Record<string, string>> = {
  FPM_ERR_BODY_TOO_LARGE: 'request body failed: it exceeds request.body_max_size',
  FPM_ERR_BODY_TIMEOUT: 'request body failed: the web server sent no bytes of it for request.body_timeout'
}

export class RequestBodyStream implements UnderlyingSource<Uint8Array> {
  readonly stream: ReadableStream<Uint8Array>
  readonly #id: number
  readonly #port: MessagePort
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null
  #credit = 0
  #done = false
  #pullDone: (() => void) | null = null

  constructor (id: number, port: MessagePort) {
    this.#id = id
    this.#port = port
    this.stream = new ReadableStream<Uint8Array>(this, { highWaterMark: 0 })
  }

  start (controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller
  }

  pull (): Promise<void> | undefined {
    if (this.#done) return undefined
    if (this.#credit <= 0) {
      this.#credit = BODY_PULL_BYTES
      const pull: PullMessage = { t: Msg.PULL, id: this.#id, bytes: BODY_PULL_BYTES }
      this.#port.postMessage(pull)
    }
    return new Promise<void>((resolve) => { this.#pullDone = resolve })
  }

  cancel (): void {
    this.#done = true
    this.#wake()
  }

  /** A BODY message for this request. */
  push (msg: BodyMessage): void {
    if (this.#done) return
    const controller = this.#controller as ReadableStreamDefaultController<Uint8Array>
    const body = msg.body
    if (body !== null && body.byteLength > 0) {
      this.#credit -= body.byteLength
      controller.enqueue(body)
    }
    if (msg.error !== null) {
      this.fail(new FpmError(msg.error as FpmErrorCode, BODY_ERRORS[msg.error] ?? `request body failed (${msg.error})`))
      return
    }
    if (msg.end) {
      this.#done = true
      controller.close()
    }
    this.#wake()
  }

  /** Errors the stream (ABORT, or a BODY error): readers get `reason`. */
  fail (reason: Error): void {
    if (this.#done) return
    this.#done = true
    this.#controller?.error(reason)
    this.#wake()
  }

  #wake (): void {
    const resolve = this.#pullDone
    if (resolve !== null) {
      this.#pullDone = null
      resolve()
    }
  }
}
