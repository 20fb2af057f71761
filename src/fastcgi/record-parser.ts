// Incremental FastCGI record parser (FastCGI spec §3.3 record framing): bytes in, records out.
// No sockets, no record semantics: the connection decides what each record type means.
//
// Design after undici's WebSocket ByteParser (nodejs/undici lib/web/websocket/receiver.js): a list of
// received chunks and a running byte count; a record's content is a `subarray` view of the chunk it sits
// in, and bytes are copied only when a record straddles chunks. Unlike ByteParser we never `shift()` the
// list or re-slice the first chunk: a head index and an offset walk it, so the only allocation per record
// is the content view (none for empty records).

import { Buffer } from 'node:buffer'
import { ProtocolError } from '../common/errors.ts'
import { FCGI_VERSION_1, HEADER_LEN } from './constants.ts'
import { readHeader } from './header.ts'
import type { RecordHeader } from './header.ts'

export interface RecordSink {
  /**
   * One complete record, in stream order. `content` excludes the padding; it is a view of the pushed
   * chunk when the record sat inside one chunk, else a fresh standalone copy. The parser never writes to
   * it afterwards, so it stays valid as long as the caller does not reuse the chunks it pushed.
   */
  onRecord (type: number, requestId: number, content: Buffer): void
}

// Content of empty records (PARAMS/STDIN terminators): shared, never written, so no allocation per record.
const EMPTY = Buffer.alloc(0)
// A header split across chunks is gathered here and read at once: never handed out, never kept
// between calls, so every parser shares it (no allocation per connection).
const HEADER_SCRATCH = Buffer.alloc(HEADER_LEN)

const S_HEADER = 0
const S_CONTENT = 1
const S_PADDING = 2

// Drop consumed chunk slots once they are at least half of the list (amortised O(1) per chunk).
const COMPACT_MIN = 1024

export class RecordParser {
  readonly #sink: RecordSink
  #chunks: Array<Buffer | undefined> = []
  #head = 0 // index in #chunks of the first chunk with unread bytes
  #offset = 0 // read position inside #chunks[#head]
  #bytes = 0 // unread bytes over all chunks
  #state = S_HEADER
  readonly #header: RecordHeader = { version: 0, type: 0, requestId: 0, contentLength: 0, paddingLength: 0 }
  #padLeft = 0
  #running = false
  #epoch = 0
  #failure: { error: unknown } | null = null

  constructor (sink: RecordSink) {
    this.#sink = sink
  }

  /** Bytes received but not yet delivered or skipped: the incomplete tail (at most one record). */
  get bufferedBytes (): number {
    return this.#bytes
  }

  /**
   * Parses every complete record now available and calls `sink.onRecord` synchronously for each, in order;
   * the incomplete tail is kept for the next push. A record is delivered as soon as its content is
   * complete; its padding (0..255 bytes, any value) is skipped as it arrives.
   *
   * Throws ProtocolError FPM_ERR_PROTOCOL_VERSION for a version other than 1, and lets an exception thrown
   * by the sink propagate. Either way the parser is then dead: it drops its buffers and every later push()
   * rethrows that same error, until reset(). Calling push() from inside onRecord is a programmer error
   * (throws); calling reset() from inside onRecord stops delivery of the rest of the chunk.
   */
  push (chunk: Buffer): void {
    if (this.#failure !== null) throw this.#failure.error
    if (this.#running) throw new Error('RecordParser.push() called from inside onRecord()')
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    this.#running = true
    try {
      this.#run()
    } catch (error) {
      this.#clear()
      this.#failure = { error }
      throw error
    } finally {
      this.#running = false
    }
  }

  /** Forgets buffered bytes and any earlier failure: ready for a new stream. */
  reset (): void {
    this.#clear()
    this.#failure = null
    this.#epoch++
  }

  #run (): void {
    const epoch = this.#epoch
    const header = this.#header
    for (;;) {
      if (this.#state === S_HEADER) {
        if (this.#bytes < HEADER_LEN) return
        const chunk = this.#chunks[this.#head]!
        if (chunk.length - this.#offset >= HEADER_LEN) {
          readHeader(chunk, this.#offset, header)
          this.#skip(HEADER_LEN)
        } else {
          this.#copyOut(HEADER_SCRATCH, HEADER_LEN)
          readHeader(HEADER_SCRATCH, 0, header)
        }
        // Spec §3.3: FCGI_VERSION_1 is the only version. php-fpm accepts any version >= 1; we are strict.
        if (header.version !== FCGI_VERSION_1) {
          throw new ProtocolError('FPM_ERR_PROTOCOL_VERSION', `unsupported FastCGI version ${header.version}`)
        }
        this.#state = S_CONTENT
      }
      if (this.#state === S_CONTENT) {
        const len = header.contentLength
        if (this.#bytes < len) return
        const content = len === 0 ? EMPTY : this.#take(len)
        this.#padLeft = header.paddingLength
        this.#state = S_PADDING
        this.#sink.onRecord(header.type, header.requestId, content)
        if (this.#epoch !== epoch) return // reset() from inside the sink
      }
      if (this.#padLeft > 0) {
        const n = this.#padLeft < this.#bytes ? this.#padLeft : this.#bytes
        this.#skip(n)
        this.#padLeft -= n
        if (this.#padLeft > 0) return
      }
      this.#state = S_HEADER
    }
  }

  // n > 0 and n <= #bytes
  #take (n: number): Buffer {
    const chunk = this.#chunks[this.#head]!
    const start = this.#offset
    const avail = chunk.length - start
    if (avail >= n) {
      this.#bytes -= n
      if (avail === n) {
        this.#nextChunk()
        if (start === 0) return chunk // the record is the whole chunk
      } else {
        this.#offset = start + n
      }
      return chunk.subarray(start, start + n)
    }
    // allocUnsafeSlow, not allocUnsafe: a standalone ArrayBuffer of exactly n bytes, never a slice of
    // Node's shared pool. The server keeps STDIN views and moves bodies to workers (common/messages.ts),
    // and a pooled slice would pin (or transfer) unrelated bytes. Every byte is overwritten by #copyOut.
    const out = Buffer.allocUnsafeSlow(n)
    this.#copyOut(out, n)
    return out
  }

  // Copies the next n unread bytes into target[0..n) and consumes them.
  #copyOut (target: Buffer, n: number): void {
    this.#bytes -= n
    let done = 0
    while (done < n) {
      const chunk = this.#chunks[this.#head]!
      const avail = chunk.length - this.#offset
      const want = n - done
      if (avail <= want) {
        chunk.copy(target, done, this.#offset)
        done += avail
        this.#nextChunk()
      } else {
        chunk.copy(target, done, this.#offset, this.#offset + want)
        this.#offset += want
        done = n
      }
    }
  }

  // Consumes n unread bytes without looking at them (headers read in place, padding).
  #skip (n: number): void {
    this.#bytes -= n
    while (n > 0) {
      const avail = this.#chunks[this.#head]!.length - this.#offset
      if (avail <= n) {
        n -= avail
        this.#nextChunk()
      } else {
        this.#offset += n
        n = 0
      }
    }
  }

  #nextChunk (): void {
    this.#chunks[this.#head] = undefined // release it: delivered views keep their own reference
    this.#head++
    this.#offset = 0
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0
      this.#head = 0
    } else if (this.#head >= COMPACT_MIN && this.#head * 2 >= this.#chunks.length) {
      this.#chunks.splice(0, this.#head)
      this.#head = 0
    }
  }

  #clear (): void {
    this.#chunks = []
    this.#head = 0
    this.#offset = 0
    this.#bytes = 0
    this.#state = S_HEADER
    this.#padLeft = 0
  }
}
