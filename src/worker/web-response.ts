// Web Response -> CGI response bytes, and the logic that moves them to the main thread
// (common/messages.ts): either the whole response in the task result (the fast path) or HEAD then
// CHUNK messages on the worker's channel under a RESPONSE_WINDOW_BYTES credit window.
//
// The fast path: reads that complete before the next setImmediate (one timer per response) count as
// "prompt". A body that ends promptly within FAST_PATH_MAX_BYTES, with nothing else pending, goes
// back in ONE message (the task result). Anything else switches to the channel: the head (and what
// was read so far) is sent as soon as a read has to wait, so a pausing stream (SSE) is flushed when it
// pauses, never held back. On the channel, small chunks that are already available are coalesced
// (up to COALESCE_MAX_BYTES); chunks of TRANSFER_MIN_BYTES or more go alone and are transferred.
// A light Response (light-response.ts) has no stream: its head comes from its record
// (serializeLightHead) and its whole body is given to the sender as bytes, which take the same path
// as one prompt chunk.
//
// Ownership: a chunk of TRANSFER_MIN_BYTES or more that exactly covers a plain ArrayBuffer is
// transferred as is, so it is detached afterwards in the handler's thread (as a byte stream's
// enqueue() does). `new Response(bytes)` copies its source, so only a handler that enqueues a buffer
// it keeps into its own ReadableStream can notice. Any other chunk is copied into an exact buffer.

import { Msg, RESPONSE_WINDOW_BYTES, TEXT_BODY_MAX_BYTES, TRANSFER_MIN_BYTES } from '../common/messages.ts'
import { Buffer } from 'node:buffer'
import type { ChunkMessage, HeadMessage } from '../common/messages.ts'
import type { MessagePort } from 'node:worker_threads'
import type { ReadableStreamReadResult } from 'node:stream/web'
import type { LightResponseParts } from './light-response.ts'

/** Largest body returned in the task result. */
export const FAST_PATH_MAX_BYTES = 64 * 1024
/** Small chunks are coalesced into one message up to this size. */
const COALESCE_MAX_BYTES = 64 * 1024
/** A chunk larger than this is split (copied) so that two messages fit in the window. */
const MESSAGE_MAX_BYTES = RESPONSE_WINDOW_BYTES / 2

export const SendOutcome = {
  /** Nothing was sent: the response is in `fastBody` for the task result. */
  FAST: 0,
  /** The response went over the channel and ended normally. */
  CHANNEL: 1,
  /** The body failed before anything was sent: the caller may still answer 500. `error` is set. */
  FAILED_BEFORE_HEAD: 2,
  /** The body failed after the head was sent: CHUNK {end, failed} went out. `error` is set. */
  FAILED_AFTER_HEAD: 3,
  /** ABORT: the sender stopped, nothing more was sent. */
  ABORTED: 4
} as const
export type SendOutcome = typeof SendOutcome[keyof typeof SendOutcome]

/** Decides, when the body has ended, whether the fast path is still allowed (no pending waitUntil). */
export interface FastPathGate {
  canUseFastPath (): boolean
}

// ---------------------------------------------------------------------------------------------
// Head serialization

const canonicalNames = new Map<string, string>([
  ['etag', 'ETag'],
  ['www-authenticate', 'WWW-Authenticate'],
  ['content-md5', 'Content-MD5'],
  ['x-xss-protection', 'X-XSS-Protection']
])
const CANONICAL_CACHE_MAX = 1024

/** content-type -> Content-Type (cached; a few well-known names keep their usual spelling). */
export function canonicalHeaderName (name: string): string {
  let canonical = canonicalNames.get(name)
  if (canonical === undefined) {
    canonical = ''
    let upper = true
    for (let i = 0; i < name.length; i++) {
      const ch = name[i] as string
      canonical += upper ? ch.toUpperCase() : ch
      upper = ch === '-'
    }
    if (canonicalNames.size < CANONICAL_CACHE_MAX) canonicalNames.set(name, canonical)
  }
  return canonical
}

let statusCodes: Record<number, string | undefined> | null = null

function reasonPhrase (status: number, statusText: string): string {
  if (statusText !== '') return statusText
  // node:http is loaded on the first non-200 status without a statusText, not at thread start.
  statusCodes ??= process.getBuiltinModule('node:http').STATUS_CODES
  return statusCodes[status] ?? ''
}

/**
 * The CGI header block: `Status: <code> <reason>` unless 200, every header with its canonical name,
 * each Set-Cookie on its own line, then the empty line. A `status` header is dropped: the
 * Response's status is the one that counts.
 */
export function serializeHead (response: Response): string {
  return statusLine(response.status, response.statusText) + headerLines(response.headers) + '\r\n'
}

/** The same head for a light Response's record (light-response.ts), byte for byte. */
export function serializeLightHead (parts: LightResponseParts): string {
  const headers = parts.headers
  let lines: string
  if (headers !== null) lines = headerLines(headers)
  else if (parts.headerPairs !== null) lines = pairLines(parts.headerPairs)
  else lines = parts.contentType === null ? '' : 'Content-Type: ' + parts.contentType + '\r\n'
  return statusLine(parts.status, parts.statusText) + lines + '\r\n'
}

function statusLine (status: number, statusText: string): string {
  if (status === 200) return ''
  const reason = reasonPhrase(status, statusText)
  return reason === '' ? 'Status: ' + status + '\r\n' : 'Status: ' + status + ' ' + reason + '\r\n'
}

/** headerLines() of the Headers these pairs would make (no repeated names, so no cookie list). */
function pairLines (pairs: readonly string[]): string {
  let lines = ''
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i] as string
    if (name === 'status') continue
    lines += canonicalHeaderName(name) + ': ' + (pairs[i + 1] as string) + '\r\n'
  }
  return lines
}

function headerLines (headers: Headers): string {
  let lines = ''
  let cookiesDone = false
  for (const [name, value] of headers) {
    if (name === 'set-cookie') {
      // Headers iterates each Set-Cookie on its own already; getSetCookie() also covers
      // implementations that join them.
      if (!cookiesDone && typeof headers.getSetCookie === 'function') {
        cookiesDone = true
        for (const cookie of headers.getSetCookie()) lines += 'Set-Cookie: ' + cookie + '\r\n'
      } else if (!cookiesDone) {
        lines += 'Set-Cookie: ' + value + '\r\n'
      }
      continue
    }
    if (name === 'status') continue
    lines += canonicalHeaderName(name) + ': ' + value + '\r\n'
  }
  return lines
}

// ---------------------------------------------------------------------------------------------
// Bytes

const encoder = new TextEncoder()

/** Strings up to this many UTF-16 units are encoded into a scratch buffer, then copied out exactly. */
const SCRATCH_MAX_UNITS = FAST_PATH_MAX_BYTES / 3
const scratch = new Uint8Array(FAST_PATH_MAX_BYTES)

/**
 * A light Response's body as bytes this thread owns: a new exact buffer for a string (UTF-8, lone
 * surrogates as U+FFFD, as undici encodes it), the Response's own copy for bytes; null when empty.
 */
export function lightBodyBytes (body: string | Uint8Array | null): Uint8Array | null {
  if (body === null || body.length === 0) return null
  if (typeof body !== 'string') return body
  if (body.length > SCRATCH_MAX_UNITS) return encoder.encode(body)
  // encodeInto + slice: one small allocation (encode() allocates a buffer outside the heap).
  return scratch.slice(0, encoder.encodeInto(body, scratch).written)
}

/**
 * A light Response's body as the task result carries it when small (TEXT_BODY_MAX_BYTES): latin1
 * text, one char per byte of its UTF-8 (an ASCII string is its own text: no encoding at all); ''
 * when empty; null when larger (it then takes the ResponseSender's way as bytes).
 */
export function lightBodyText (body: string | Uint8Array | null): string | null {
  if (body === null || body.length === 0) return ''
  if (typeof body === 'string') {
    // As many UTF-8 bytes as UTF-16 units: every char is ASCII (a native scan, ~4x a regex's speed).
    if (body.length <= TEXT_BODY_MAX_BYTES && Buffer.byteLength(body, 'utf8') === body.length) return body
    if (body.length > TEXT_BODY_MAX_BYTES) return null
    const bytes = lightBodyBytes(body) as Uint8Array
    return bytes.byteLength <= TEXT_BODY_MAX_BYTES ? latin1Text(bytes) : null
  }
  return body.byteLength <= TEXT_BODY_MAX_BYTES ? latin1Text(body) : null
}

/** A fast-path body for the task result: small bytes as latin1 text (see WorkerResult.response). */
export function resultBody (body: Uint8Array | null): Uint8Array | string | null {
  return body !== null && body.byteLength <= TEXT_BODY_MAX_BYTES ? latin1Text(body) : body
}

function latin1Text (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** Body chunks must be bytes; strings are tolerated (UTF-8), anything else fails the body. */
function chunkBytes (value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (typeof value === 'string') return encoder.encode(value)
  throw new TypeError(`a response body chunk must be a Uint8Array, got ${value === null ? 'null' : typeof value}`)
}

/** True when `view` covers its whole plain ArrayBuffer (so it can be cloned or moved as it is). */
export function isExact (view: Uint8Array): boolean {
  const buffer = view.buffer
  return view.byteOffset === 0 && view.byteLength === buffer.byteLength &&
    buffer instanceof ArrayBuffer && (buffer as { resizable?: boolean }).resizable !== true
}

/** A fresh exact-size copy of view[start, end). */
export function copyExact (view: Uint8Array, start: number, end: number): Uint8Array {
  const copy = new Uint8Array(end - start)
  copy.set(start === 0 && end === view.byteLength ? view : view.subarray(start, end))
  return copy
}

function concat (chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The sender

const TICK = Symbol('tick')
type ReadResult = ReadableStreamReadResult<Uint8Array>

function noop (): void {}

/**
 * Sends one response. start() reads the body and resolves with a SendOutcome; ack() (ACK messages),
 * abort() (ABORT) and cut() (finishRequest() while sending) drive it from outside.
 */
export class ResponseSender {
  /** The whole body for the task result, when the outcome is FAST. */
  fastBody: Uint8Array | null = null
  /** The body's error, when the outcome is FAILED_*. */
  error: unknown = null
  readonly #id: number
  readonly #port: MessagePort
  readonly #head: string
  readonly #body: ReadableStream<Uint8Array> | Uint8Array | null
  readonly #gate: FastPathGate | null
  /**
   * The port delivers on this thread (pm.accept = threads, thread-server.ts): nothing is moved, so
   * the pieces of a body this sender owns go as views of it, not as copies made to be moved.
   */
  readonly #local: boolean
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null
  #headSent = false
  #ended = false
  #aborted = false
  #cut = false
  #inFlight = 0
  #need = 0
  #windowOpen: (() => void) | null = null
  #chunks: Uint8Array[] = []
  #chunksBytes = 0
  #tick: Promise<typeof TICK> | null = null
  #immediate: NodeJS.Immediate | null = null
  #done: Promise<SendOutcome> | null = null

  /**
   * `body`: a stream to read, or the whole body as bytes this sender owns (a light Response's,
   * lightBodyBytes). gate null: the fast path is not allowed (finishRequest() responses, which go out now).
   */
  constructor (id: number, port: MessagePort, head: string, body: ReadableStream<Uint8Array> | Uint8Array | null, gate: FastPathGate | null) {
    this.#id = id
    this.#port = port
    this.#head = head
    this.#body = body
    this.#gate = gate
    this.#local = (port as { readonly sameThread?: boolean }).sameThread === true
  }

  start (): Promise<SendOutcome> {
    this.#done ??= this.#run()
    return this.#done
  }

  /** ACK: main wrote `bytes` body bytes. */
  ack (bytes: number): void {
    this.#inFlight -= bytes
    if (this.#inFlight < 0) this.#inFlight = 0
    if (this.#windowOpen !== null && this.#inFlight + this.#need <= RESPONSE_WINDOW_BYTES) this.#wake()
  }

  /** ABORT: send nothing more, cancel the body, release every wait. */
  abort (reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reader?.cancel(reason).catch(noop)
    this.#wake()
  }

  /**
   * finishRequest() while this response is being sent: stop reading (the body is cancelled where it
   * is), send what was read and end. Resolves true when the response then ended normally.
   */
  cut (): Promise<boolean> {
    if (this.#ended || this.#aborted || this.#cut) return Promise.resolve(false)
    this.#cut = true
    this.#reader?.cancel().catch(noop)
    return this.start().then(isChannelEnd)
  }

  async #run (): Promise<SendOutcome> {
    let failed = false
    const body = this.#body
    if (body !== null) {
      try {
        if (body instanceof Uint8Array) {
          await this.#add(body, true)
        } else {
          this.#reader = body.getReader()
          if (this.#cut || this.#aborted) this.#reader.cancel().catch(noop)
          await this.#pump()
        }
      } catch (err) {
        failed = true
        this.error = err
        this.#reader?.cancel(err).catch(noop)
      }
    }
    if (this.#immediate !== null) clearImmediate(this.#immediate)
    if (this.#aborted) return SendOutcome.ABORTED
    if (failed) {
      if (!this.#headSent) return SendOutcome.FAILED_BEFORE_HEAD
      await this.#post(this.#take(), true, true)
      return this.#aborted ? SendOutcome.ABORTED : SendOutcome.FAILED_AFTER_HEAD
    }
    if (!this.#headSent && !this.#cut && this.#gate !== null && this.#gate.canUseFastPath()) {
      const body = this.#take()
      // Bytes given to the sender are exact already (lightBodyBytes): no check (it would move a
      // small on-heap buffer off the heap).
      this.fastBody = body === null || body === this.#body || isExact(body) ? body : copyExact(body, 0, body.byteLength)
      return SendOutcome.FAST
    }
    await this.#post(this.#take(), true, false)
    return this.#aborted ? SendOutcome.ABORTED : SendOutcome.CHANNEL
  }

  async #pump (): Promise<void> {
    const reader = this.#reader as ReadableStreamDefaultReader<Uint8Array>
    for (;;) {
      const read = reader.read()
      let result: ReadResult | typeof TICK
      if (!this.#headSent || this.#chunksBytes > 0) {
        // Something is waiting to go out: if this read is not prompt, send it first.
        result = await Promise.race([read, this.#nextTick()])
        if (result === TICK) {
          this.#tick = null
          await this.#post(this.#take(), false, false)
          result = await read
        }
      } else {
        result = await read
      }
      if (result.done || this.#aborted) return
      await this.#add(chunkBytes(result.value))
      if (this.#aborted || this.#cut) return
    }
  }

  #nextTick (): Promise<typeof TICK> {
    if (this.#tick === null) {
      this.#tick = new Promise<typeof TICK>((resolve) => {
        this.#immediate = setImmediate(resolve, TICK)
      })
    }
    return this.#tick
  }

  /** `owned`: the sender's own bytes (the whole body), not a chunk its producer may still write to. */
  async #add (chunk: Uint8Array, owned = false): Promise<void> {
    const size = chunk.byteLength
    if (size === 0) return
    if (!this.#headSent && this.#gate !== null && !this.#cut) {
      if (this.#chunksBytes + size <= FAST_PATH_MAX_BYTES) {
        this.#chunks.push(chunk)
        this.#chunksBytes += size
        return
      }
      // Too big for the fast path: from now on, the channel.
    }
    if (size >= TRANSFER_MIN_BYTES) {
      if (this.#chunksBytes > 0) await this.#post(this.#take(), false, false)
      await this.#post(chunk, false, false, owned)
      return
    }
    this.#chunks.push(chunk)
    this.#chunksBytes += size
    if (this.#chunksBytes >= COALESCE_MAX_BYTES) await this.#post(this.#take(), false, false)
  }

  /** The pending chunks as one view (the chunk itself when alone), or null. */
  #take (): Uint8Array | null {
    const chunks = this.#chunks
    if (chunks.length === 0) return null
    const out = chunks.length === 1 ? chunks[0] as Uint8Array : concat(chunks, this.#chunksBytes)
    this.#chunks = []
    this.#chunksBytes = 0
    return out
  }

  /**
   * Posts `data` (HEAD first if the head is not out yet), in window-sized pieces; a whole body the
   * sender owns in one message (moved), or with pm.accept = threads as views.
   */
  async #post (data: Uint8Array | null, end: boolean, failed: boolean, owned = false): Promise<void> {
    const asViews = owned && this.#local
    const total = data === null ? 0 : data.byteLength
    // A whole body this sender owns, first out (nothing in flight), is in memory already: moved in
    // one message it adds nothing to what is held, where window-sized pieces would each be a copy.
    const whole = owned && !this.#local && this.#inFlight === 0 && data !== null && isExact(data)
    let offset = 0
    do {
      if (this.#aborted || this.#ended) return
      const size = whole ? total : Math.min(total - offset, MESSAGE_MAX_BYTES)
      if (!whole && size > 0 && this.#inFlight + size > RESPONSE_WINDOW_BYTES) {
        await this.#waitForWindow(size)
        if (this.#aborted) return
      }
      let piece: Uint8Array | null = null
      if (size > 0) {
        piece = size === total ? data : asViews ? (data as Uint8Array).subarray(offset, offset + size) : copyExact(data as Uint8Array, offset, offset + size)
      }
      offset += size
      const isLast = offset >= total
      this.#send(piece, end && isLast, failed && isLast, asViews)
    } while (offset < total)
  }

  #send (body: Uint8Array | null, end: boolean, failed: boolean, asView = false): void {
    let transfer: ArrayBuffer[] | undefined
    if (body !== null) {
      this.#inFlight += body.byteLength
      if (!asView && !isExact(body)) body = copyExact(body, 0, body.byteLength)
      if (!this.#local && body.byteLength >= TRANSFER_MIN_BYTES) transfer = [body.buffer as ArrayBuffer]
    }
    if (end) this.#ended = true
    let msg: HeadMessage | ChunkMessage
    if (!this.#headSent) {
      this.#headSent = true
      msg = { t: Msg.HEAD, id: this.#id, head: this.#head, body, end }
    } else {
      msg = { t: Msg.CHUNK, id: this.#id, body, end, failed }
    }
    try {
      this.#port.postMessage(msg, transfer)
    } catch (err) {
      // A buffer that cannot be moved (e.g. it belongs to a WebAssembly.Memory): copy it instead.
      if (transfer === undefined || body === null) throw err
      this.#port.postMessage({ ...msg, body: copyExact(body, 0, body.byteLength) })
    }
  }

  #waitForWindow (size: number): Promise<void> {
    this.#need = size
    return new Promise<void>((resolve) => { this.#windowOpen = resolve })
  }

  #wake (): void {
    const resolve = this.#windowOpen
    if (resolve !== null) {
      this.#windowOpen = null
      resolve()
    }
  }
}

function isChannelEnd (outcome: SendOutcome): boolean {
  return outcome === SendOutcome.CHANNEL
}
