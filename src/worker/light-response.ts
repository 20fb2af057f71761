// The thread's global Response: `new Response(body, init)` with a string, Uint8Array, ArrayBuffer or
// no body (and a valid init) records (body, status, statusText, headers) in a light object instead
// of building undici's Response, its body stream and its HeadersList. The sender (web-response.ts)
// takes the recorded body as bytes, with no stream. Anything else a handler does with it builds the
// real Response (once) and delegates to it. hono's node-server does the same, for the same reason.
//
// What keeps it a Response for handlers:
// - The replacement constructor shares Response.prototype (its `constructor` becomes the
//   replacement): `instanceof Response` holds for light and real ones alike, `class X extends
//   Response` builds real Responses of class X, and the statics (json, redirect, error) are there
//   (Response.json() of a simple value gives a light one too).
// - Bodies it does not record (streams, Blob, FormData, URLSearchParams...), an init it does not
//   fully validate itself (a status outside 200-599 or not a number, a statusText that is not plain
//   ASCII, headers Headers refuses) and any subclass go to undici's constructor: same result, same
//   errors.
// - A recorded Uint8Array/ArrayBuffer is copied, as undici does: later changes by the handler are
//   not seen.
// - status, statusText, ok, type, url and redirected are answered from the record. `headers` is a
//   real Headers, built on first use, and stays the object handlers get: the head is written from
//   it once it exists. A plain object of simple headers (`{ 'content-type': 'application/json' }`:
//   token names, printable ASCII values without surrounding spaces, no two names equal but for
//   case) is recorded as sorted lowercase pairs, which is all Headers would make of it; any other
//   headers init builds the Headers at construction, so that invalid ones throw there. When the
//   real Response exists too, its headers are brought in line before clone(), blob(), formData().
// - Once the sender has taken the body, the Response looks as it does after the sender read a real
//   one: bodyUsed true, body locked (cancelled for HEAD), text() and clone() fail.

import { appendPairs, installLightClass, isToken, lightPrototype, markRead, realTarget, withHeaders } from './light-delegation.ts'
import { undici } from './undici-classes.ts'
const TEXT_PLAIN = 'text/plain;charset=UTF-8'
const JSON_TYPE = 'application/json'

type LightBody = string | Uint8Array | null

/** A light Response's record, for the sender. */
export interface LightResponseParts {
  readonly status: number
  readonly statusText: string
  /** The headers, or null when the Headers object was never built (see `headerPairs`). */
  readonly headers: Headers | null
  /**
   * When `headers` is null: the headers as lowercase name, value pairs (flat) in Headers' order,
   * `contentType` included; null when there are none besides `contentType`.
   */
  readonly headerPairs: readonly string[] | null
  /** The content type undici would add (null: none); already in `headers` when those are not null. */
  readonly contentType: string | null
  /** A Uint8Array here is the Response's own copy. */
  readonly body: LightBody
}

const Taken = { NO: 0, READ: 1, CANCELLED: 2 } as const
type Taken = typeof Taken[keyof typeof Taken]

function noop (): void {}

let takeParts: (value: unknown, cancelled: boolean) => LightResponseParts | null
let discardBody: (value: unknown) => boolean
let isLight: (value: unknown) => value is LightResponse
let realOf: (response: LightResponse, syncHeaders: boolean) => Response

export class LightResponse {
  readonly #body: LightBody
  readonly #status: number
  readonly #statusText: string
  readonly #contentType: string | null
  #headers: Headers | null
  readonly #pairs: readonly string[] | null
  #real: Response | null = null
  #taken: Taken = Taken.NO

  /** Arguments already validated (recordInit); `contentType` null when `body` is. */
  constructor (body: LightBody, status: number, statusText: string, headers: Headers | null, pairs: readonly string[] | null, contentType: string | null) {
    this.#body = body
    this.#status = status
    this.#statusText = statusText
    this.#headers = headers
    this.#pairs = pairs
    this.#contentType = contentType
  }

  static {
    isLight = (value): value is LightResponse => typeof value === 'object' && value !== null && #body in value
    realOf = (response, syncHeaders) => syncHeaders ? response.#synced() : response.#materialize()
    takeParts = (value, cancelled) => {
      if (!isLight(value) || value.#real !== null || value.#taken !== Taken.NO) return null
      value.#taken = cancelled ? Taken.CANCELLED : Taken.READ
      return { status: value.#status, statusText: value.#statusText, headers: value.#headers, headerPairs: value.#pairs, contentType: value.#contentType, body: value.#body }
    }
    discardBody = (value) => {
      if (!isLight(value) || value.#real !== null) return false
      if (value.#taken === Taken.NO) value.#taken = Taken.CANCELLED
      return true
    }
  }

  get status (): number {
    return this.#status
  }

  get statusText (): string {
    return this.#statusText
  }

  get ok (): boolean {
    return this.#status >= 200 && this.#status <= 299
  }

  get type (): Response['type'] {
    return 'default'
  }

  get url (): string {
    return ''
  }

  get redirected (): boolean {
    return false
  }

  get headers (): Headers {
    let headers = this.#headers
    if (headers === null) {
      if (this.#real !== null) {
        headers = this.#real.headers
      } else {
        headers = new Headers()
        if (this.#pairs !== null) appendPairs(headers, this.#pairs)
        else if (this.#contentType !== null) headers.append('content-type', this.#contentType)
      }
      this.#headers = headers
    }
    return headers
  }

  get body (): ReadableStream<Uint8Array> | null {
    return this.#body === null ? null : this.#materialize().body
  }

  get bodyUsed (): boolean {
    if (this.#real !== null) return this.#real.bodyUsed
    return this.#taken !== Taken.NO && this.#body !== null
  }

  clone (): Response {
    if (this.#real === null && this.#taken === Taken.NO) {
      const body = this.#body
      const headers = this.#headers
      const copy = new LightResponse(typeof body === 'object' && body !== null ? new Uint8Array(body) : body,
        this.#status, this.#statusText, headers === null ? null : new Headers(headers), this.#pairs, this.#contentType)
      return copy as unknown as Response
    }
    return this.#synced().clone()
  }

  /** The real Response (built once). */
  #materialize (): Response {
    let real = this.#real
    if (real === null) {
      let headers: Headers | Array<[string, string]> | undefined
      if (this.#headers !== null) headers = this.#headers
      else if (this.#pairs !== null) headers = appendPairs(new Headers(), this.#pairs)
      else if (this.#contentType !== null) headers = [['content-type', this.#contentType]]
      const init: ResponseInit = { status: this.#status, statusText: this.#statusText, headers }
      let body = this.#body
      // Taken: the sender has the bytes (it may have moved them to the main thread).
      if (this.#taken !== Taken.NO && body !== null) body = new Uint8Array(0)
      real = new (undici().Response)(body, init)
      if (this.#taken === Taken.READ) markRead(real)
      else if (this.#taken === Taken.CANCELLED && real.body !== null) real.body.cancel().catch(noop)
      this.#real = real
    }
    return real
  }

  /** The real Response with the headers handlers see (they may have changed them). */
  #synced (): Response {
    return withHeaders(this.#materialize(), this.#headers)
  }
}

// The body readers (text(), json()...) and, once undici is loaded, anything else
// Response.prototype has (and whatever a later Node adds) are the real Response's; `constructor`
// is Response.prototype's (the global Response).
const realOfLight = (value: object, syncHeaders: boolean): object => realOf(value as LightResponse, syncHeaders)
lightPrototype(LightResponse.prototype, 'Response', realOfLight)

/** True for a light Response (whether or not its real Response exists). */
export function isLightResponse (value: unknown): value is LightResponse {
  return isLight(value)
}

/**
 * For the sender: the record of a light Response whose real Response was never built, marking its
 * body as taken (read, or cancelled for a HEAD request). Null for anything else: send it as a Response.
 */
export function takeLightResponse (value: unknown, cancelled: boolean): LightResponseParts | null {
  return takeParts(value, cancelled)
}

/** A light Response that will not be sent: true when nothing more needs releasing. */
export function discardLightResponse (value: unknown): boolean {
  return discardBody(value)
}

// ---------------------------------------------------------------------------------------------
// Recording a Response

interface RawInit {
  readonly headers: unknown
  readonly status: unknown
  readonly statusText: unknown
}

const NO_INIT: RawInit = { headers: undefined, status: undefined, statusText: undefined }

/**
 * ResponseInit's members, read once in undici's (WebIDL's) order; null when `init` is not a
 * dictionary (undici throws for it).
 */
function readInit (init: unknown): RawInit | null {
  if (init === undefined || init === null) return NO_INIT
  if (typeof init !== 'object' && typeof init !== 'function') return null
  const record = init as Record<string, unknown>
  const headers = record.headers
  const status = record.status
  const statusText = record.statusText
  return { headers, status, statusText }
}

/** The init for undici, built from what was read (so that getters run once). */
function plainInit (raw: RawInit): ResponseInit {
  return raw as ResponseInit
}

/** string, plain bytes or nothing; a copy for bytes (undici copies too). Undefined: not recordable. */
function recordableBody (body: unknown): LightBody | undefined {
  if (body === undefined || body === null) return null
  if (typeof body === 'string') return body
  if (body instanceof Uint8Array) return isPlainBuffer(body.buffer) ? new Uint8Array(body) : undefined
  if (body instanceof ArrayBuffer) return isPlainBuffer(body) ? new Uint8Array(body.slice(0)) : undefined
  return undefined
}

function isPlainBuffer (buffer: ArrayBufferLike): boolean {
  return buffer instanceof ArrayBuffer && !buffer.resizable && (buffer as { detached?: boolean }).detached !== true
}

interface RecordedInit {
  readonly status: number
  readonly statusText: string
  /** At most one of the two (see LightResponseParts). */
  readonly headers: Headers | null
  readonly pairs: readonly string[] | null
}

/**
 * The init when every member is valid and simple, with `contentType` added to its headers when they
 * have none; null: leave it to undici (it may throw).
 */
function recordInit (raw: RawInit, hasBody: boolean, contentType: string | null): RecordedInit | null {
  let status = 200
  const rawStatus = raw.status
  if (rawStatus !== undefined) {
    if (typeof rawStatus !== 'number' || !Number.isInteger(rawStatus) || rawStatus < 200 || rawStatus > 599) return null
    // A body with a null-body status: undici throws.
    if (hasBody && (rawStatus === 204 || rawStatus === 205 || rawStatus === 304)) return null
    status = rawStatus
  }
  let statusText = ''
  const rawText = raw.statusText
  if (rawText !== undefined) {
    if (typeof rawText !== 'string' || !isPlainReason(rawText)) return null
    statusText = rawText
  }
  let headers: Headers | null = null
  let pairs: string[] | null = null
  if (raw.headers !== undefined) pairs = plainHeaderPairs(raw.headers, contentType)
  if (raw.headers !== undefined && pairs === null) {
    try {
      headers = new Headers(raw.headers as ConstructorParameters<typeof Headers>[0])
    } catch {
      return null
    }
    if (contentType !== null && !headers.has('content-type')) headers.append('content-type', contentType)
  }
  return { status, statusText, headers, pairs }
}

/**
 * A plain object of headers that Headers would take unchanged, as lowercase name, value pairs
 * sorted by name (Headers' iteration order), with `contentType` added when it has no content-type.
 * Null for anything else: it goes to Headers (arrays, Headers, Maps, symbol keys, non-string values,
 * values Headers would trim or refuse, names it refuses or would merge).
 */
function plainHeaderPairs (init: unknown, contentType: string | null): string[] | null {
  if (typeof init !== 'object' || init === null) return null
  const proto: unknown = Object.getPrototypeOf(init)
  if (proto !== Object.prototype && proto !== null) return null
  if (Object.getOwnPropertySymbols(init).length > 0) return null
  const record = init as Record<string, unknown>
  const names = Object.keys(record)
  const pairs: string[] = []
  let hasContentType = false
  for (let k = 0; k < names.length; k++) {
    const key = names[k] as string
    const value = record[key]
    if (typeof value !== 'string' || key === '' || !isToken(key) || !isPlainValue(value)) return null
    const name = key.toLowerCase()
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return null
    if (name === 'content-type') hasContentType = true
    insertSorted(pairs, name, value)
  }
  if (contentType !== null && !hasContentType) insertSorted(pairs, 'content-type', contentType)
  return pairs
}

function insertSorted (pairs: string[], name: string, value: string): void {
  let at = pairs.length
  while (at > 0 && (pairs[at - 2] as string) > name) at -= 2
  pairs.splice(at, 0, name, value)
}

/** Printable ASCII and tabs, not starting or ending with a space or tab (Headers would trim those). */
function isPlainValue (value: string): boolean {
  if (value === '') return true
  const first = value.charCodeAt(0)
  const last = value.charCodeAt(value.length - 1)
  return first !== 0x20 && first !== 0x09 && last !== 0x20 && last !== 0x09 && isPlainReason(value)
}

/** HTAB, SP and VCHAR only (undici also takes obs-text; that goes to undici). */
function isPlainReason (text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 0x09 && (c < 0x20 || c > 0x7e)) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// The thread's global Response

/** What the global Response constructs (see the file comment). */
function ResponseImpl (this: unknown, body?: unknown, init?: unknown): Response {
  if (new.target === undefined) throw new TypeError("Class constructor Response cannot be invoked without 'new'")
  if (new.target === ResponseImpl) {
    const recorded = recordableBody(body)
    if (recorded !== undefined) {
      const raw = readInit(init)
      if (raw === null) return Reflect.construct(undici().Response, [body, init]) as Response
      const contentType = typeof recorded === 'string' ? TEXT_PLAIN : null
      const valid = recordInit(raw, recorded !== null, contentType)
      if (valid !== null) return new LightResponse(recorded, valid.status, valid.statusText, valid.headers, valid.pairs, contentType) as unknown as Response
      return Reflect.construct(undici().Response, [body, plainInit(raw)]) as Response
    }
  }
  const real = undici().Response
  // eslint-disable-next-line prefer-rest-params
  return Reflect.construct(real, arguments, realTarget(new.target, ResponseImpl, real)) as Response
}

/** Response.json(): a light Response with the JSON text, or undici's for what it does not record. */
function json (data: unknown, init?: unknown): Response {
  if (arguments.length === 0) return undici().Response.json.apply(undici().Response, arguments as unknown as [unknown])
  const raw = readInit(init)
  if (raw === null) return undici().Response.json(data, init as ResponseInit)
  // init first, as undici converts it before serializing the value.
  const recorded = recordInit(raw, true, JSON_TYPE)
  if (recorded === null) return undici().Response.json(data, plainInit(raw))
  const text = JSON.stringify(data) as string | undefined
  if (text === undefined) throw new TypeError('Value is not JSON serializable')
  return new LightResponse(text, recorded.status, recorded.statusText, recorded.headers, recorded.pairs, JSON_TYPE) as unknown as Response
}

/** Response.error() and Response.redirect() before undici is loaded: undici's, loading it. */
function error (): Response {
  return undici().Response.error()
}

function redirect (_url: string | URL, _status?: number): Response {
  const real = undici().Response
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(real.redirect, real, arguments) as Response
}

let installed = false

/** Installs the replacement Response on this thread's globalThis (once). */
export function installResponseGlobal (): void {
  if (installed) return
  installed = true
  // undici's Response.json.length, Response.redirect.length and Response.length.
  Object.defineProperty(json, 'length', { value: 1 })
  Object.defineProperty(redirect, 'length', { value: 1 })
  const statics = { error, json, redirect }
  installLightClass({ name: 'Response', impl: ResponseImpl, length: 0, light: LightResponse.prototype, isLight, realOf: realOfLight, statics },
    (replacement, real) => {
      // The statics are undici's (json: ours), with anything a later Node adds.
      Object.setPrototypeOf(replacement, real)
      for (const name of Object.getOwnPropertyNames(real)) {
        if (name === 'length' || name === 'name' || name === 'prototype' || name === 'json') continue
        Object.defineProperty(replacement, name, Object.getOwnPropertyDescriptor(real, name) as PropertyDescriptor)
      }
    })
}
