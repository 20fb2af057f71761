// The Request a handler receives: a light object that answers method, url, headers and signal
// itself and builds undici's real Request only when something else is used (the body, clone(),
// cache, ...). Building the real one costs a Request, a HeadersList filled header by header and,
// for a body, a stream: a few microseconds a request that most handlers never need (hono's
// node-server does the same, for the same reason).
//
// What keeps it a Request for handlers:
// - Its prototype chain goes through Request.prototype: `instanceof Request` holds, and every
//   Request.prototype member it does not answer itself is delegated to the real Request.
// - `headers` is a real Headers, built on first use from the params (values Headers refuses are
//   dropped, as before). It stays the object handlers get; when the real Request exists too, its
//   headers are brought in line with it before anything that reads them (clone(), formData(),
//   blob(), new Request(request), fetch(request)).
// - undici's Request constructor and fetch() check a private field, so the thread's global Request
//   and fetch are replaced (installRequestGlobals) by wrappers that hand them the real Request. The
//   replacement Request shares Request.prototype, so instanceof and subclassing are unchanged.
// - `signal` is the request's own AbortSignal, also on the real Request and on clones (as an own
//   property: undici's fetch(request) does not follow it, pass { signal: request.signal }).
// - arrayBuffer(), bytes(), text() and json() of a body the server buffered whole (a Uint8Array no
//   one else holds) are answered here, without the real Request: undici would copy the bytes into
//   a stream and out of it again (two copies of a 1 MiB upload, and the mark-compacts that their
//   external memory brings on: the echo bench spent a third of its CPU in them). Once read, the
//   Request looks as undici's does: bodyUsed true, body locked, readers and clone() fail.

import { appendPairs, installLightClass, isToken, lightPrototype, markRead, realTarget, replaceGlobal, withHeaders } from './light-delegation.ts'
import { undici } from './undici-classes.ts'
import { isExact } from './web-response.ts'

type RequestBody = Uint8Array | ReadableStream<Uint8Array> | null

/** Where the request's signal comes from, asked only when a handler reads it (an AbortController is one). */
export interface SignalSource {
  readonly signal: AbortSignal
}

let realOf: (request: LightRequest, syncHeaders: boolean) => Request
let isLight: (value: unknown) => value is LightRequest
let readWhole: (request: LightRequest) => Uint8Array | null | typeof ALREADY_READ | undefined

/** readWhole's answer for a body read before. */
const ALREADY_READ = Symbol('already read')

export class LightRequest {
  readonly #method: string
  readonly #url: string
  /** Flat [name0, value0, ...], lower-case names (CgiRequestParts.headers). */
  readonly #headerPairs: readonly string[]
  readonly #body: RequestBody
  readonly #signalSource: SignalSource
  #headers: Headers | null = null
  #real: Request | null = null
  /** A light body reader took the body (readWhole). */
  #read = false

  /** `method` must already be valid and normalized (normalizeMethod); `body` null for GET/HEAD. */
  constructor (method: string, url: string, headerPairs: readonly string[], body: RequestBody, signalSource: SignalSource) {
    this.#method = method
    this.#url = url
    this.#headerPairs = headerPairs
    this.#body = body
    this.#signalSource = signalSource
  }

  static {
    realOf = (request, syncHeaders) => syncHeaders ? request.#synced() : request.#materialize()
    isLight = (value): value is LightRequest => typeof value === 'object' && value !== null && #method in value
    // The bytes for a light body reader (taken: later reads fail), null for no body; undefined
    // when the real Request answers (it exists, or the body is a stream).
    readWhole = (request) => {
      const body = request.#body
      if (request.#real !== null || (body !== null && !(body instanceof Uint8Array))) return undefined
      if (body === null) return null
      if (request.#read) return ALREADY_READ
      request.#read = true
      return body
    }
  }

  get method (): string {
    return this.#method
  }

  get url (): string {
    return this.#url
  }

  get headers (): Headers {
    let headers = this.#headers
    if (headers === null) {
      headers = this.#real?.headers ?? appendPairs(new Headers(), this.#headerPairs)
      this.#headers = headers
    }
    return headers
  }

  get signal (): AbortSignal {
    return this.#signalSource.signal
  }

  get body (): ReadableStream<Uint8Array> | null {
    return this.#body === null ? null : this.#materialize().body
  }

  get bodyUsed (): boolean {
    return this.#real !== null ? this.#real.bodyUsed : this.#read
  }

  clone (): Request {
    const clone = this.#synced().clone()
    Object.defineProperty(clone, 'signal', { value: this.#signalSource.signal, configurable: true, enumerable: false, writable: false })
    return clone
  }

  /** The real Request (built once). */
  #materialize (): Request {
    let real = this.#real
    if (real === null) {
      // Read here: the handler may have the bytes; the real one gets none and looks read.
      const body = this.#read ? new Uint8Array(0) : this.#body
      real = new (undici().Request)(this.#url, { method: this.#method, body, duplex: 'half' } as RequestInit)
      if (this.#read) markRead(real)
      Object.defineProperty(real, 'signal', { value: this.#signalSource.signal, configurable: true, enumerable: false, writable: false })
      if (this.#headers === null) appendPairs(real.headers, this.#headerPairs)
      this.#real = real
    }
    return real
  }

  /** The real Request with the headers handlers see (they may have changed them). */
  #synced (): Request {
    return withHeaders(this.#materialize(), this.#headers)
  }
}

// The body readers (text(), json()...) and, once undici is loaded, everything else
// Request.prototype has (cache, credentials, duplex, ... and whatever a later Node adds) are the
// real Request's; `constructor` is Request.prototype's (the global Request).
const realOfLight = (value: object, syncHeaders: boolean): object => realOf(value as LightRequest, syncHeaders)
lightPrototype(LightRequest.prototype, 'Request', realOfLight)

const utf8 = new TextDecoder()
/** The bytes as an ArrayBuffer of their own: theirs when they span it (the server's exact copy), else a copy. */
const ownBuffer = (bytes: Uint8Array): ArrayBuffer => (isExact(bytes) ? bytes : bytes.slice()).buffer as ArrayBuffer
const LIGHT_READERS: ReadonlyArray<readonly [string, (bytes: Uint8Array | null) => unknown]> = [
  ['arrayBuffer', (bytes) => bytes === null ? new ArrayBuffer(0) : ownBuffer(bytes)],
  ['bytes', (bytes) => bytes === null ? new Uint8Array(0) : new Uint8Array(ownBuffer(bytes))],
  // UTF-8 decode as the Fetch spec's (and undici's) text(): a leading BOM dropped, bad bytes replaced.
  ['text', (bytes) => bytes === null ? '' : utf8.decode(bytes)],
  ['json', (bytes) => JSON.parse(bytes === null ? '' : utf8.decode(bytes)) as unknown]
]
for (const [name, read] of LIGHT_READERS) {
  const delegated = Object.getOwnPropertyDescriptor(LightRequest.prototype, name)?.value as (this: LightRequest) => Promise<unknown>
  const reader = {
    [name] (this: LightRequest): Promise<unknown> {
      if (!isLight(this)) return Reflect.apply(delegated, this, [])
      const bytes = readWhole(this)
      if (bytes === undefined) return Reflect.apply(delegated, this, [])
      if (bytes === ALREADY_READ) return Promise.reject(new TypeError('Body is unusable: Body has already been read'))
      try {
        return Promise.resolve(read(bytes))
      } catch (err) {
        return Promise.reject(err)
      }
    }
  }[name]
  Object.defineProperty(LightRequest.prototype, name, { value: reader, writable: true, enumerable: false, configurable: true })
}

/** True for a light Request (whether or not its real Request exists). */
export function isLightRequest (value: unknown): value is LightRequest {
  return isLight(value)
}

/** What the Fetch API does with a method: null when it refuses it, else the method as Request.method shows it. */
export function normalizeMethod (method: string): string | null {
  switch (method) {
    case 'GET': case 'POST': case 'HEAD': case 'PUT': case 'DELETE': case 'OPTIONS': case 'PATCH':
      return method
  }
  if (method === '' || !isToken(method)) return null
  const upper = method.toUpperCase()
  switch (upper) {
    case 'CONNECT': case 'TRACE': case 'TRACK':
      return null
    case 'GET': case 'POST': case 'HEAD': case 'PUT': case 'DELETE': case 'OPTIONS':
      return upper
  }
  return method
}

// ---------------------------------------------------------------------------------------------
// The thread's global Request and fetch

/** `args` with a light Request as the first replaced by its real Request (with the current headers). */
function realInput (args: IArguments): ArrayLike<unknown> {
  const input: unknown = args[0]
  if (!isLight(input)) return args
  const out: unknown[] = Array.prototype.slice.call(args)
  out[0] = realOf(input, true)
  return out
}

/** What the global Request constructs: undici's, with a light Request as input replaced by the real one. */
function RequestImpl (this: unknown, _input: unknown, _init?: RequestInit): Request {
  if (new.target === undefined) throw new TypeError("Class constructor Request cannot be invoked without 'new'")
  const real = undici().Request
  // eslint-disable-next-line prefer-rest-params
  return Reflect.construct(real, realInput(arguments), realTarget(new.target, RequestImpl, real)) as Request
}

/** The replacement global fetch: undici's, with a light Request sent as its real Request. */
function fetch (this: unknown, _input: unknown, _init?: RequestInit): Promise<Response> {
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(undici().fetch, this, realInput(arguments)) as Promise<Response>
}

let installed = false

/**
 * Installs the replacement Request and fetch on this thread's globalThis (once). Request.prototype
 * is undici's (its `constructor` becomes the replacement), so instanceof, subclassing and
 * Request.prototype identity are unchanged; undici loads when something needs it.
 */
export function installRequestGlobals (): void {
  if (installed) return
  installed = true
  // undici's Request.length and fetch.length.
  installLightClass({ name: 'Request', impl: RequestImpl, length: 1, light: LightRequest.prototype, isLight, realOf: realOfLight })
  Object.defineProperty(fetch, 'length', { value: 1 })
  replaceGlobal('fetch', fetch, true)
}
