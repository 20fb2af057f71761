// pm.accept = threads: what a thread says, in shared memory, of the requests it took, so that the
// main thread can name a request it never saw (request_terminate_timeout's log line, php's
// wording) even while the thread is busy and cannot answer. A ring of REQUEST_TEXTS entries, one
// per request id modulo the ring: the id, then "METHOD\tURI\tSCRIPT" in UTF-8, cut at the entry's size.

export const REQUEST_TEXTS = 64
const ENTRY_BYTES = 512
const HEAD_BYTES = 8
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function createRequestTexts (): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(REQUEST_TEXTS * ENTRY_BYTES))
}

/** The thread's side: its views of the ring made once, so that a request costs no allocation but its text. */
export class RequestTextWriter {
  /** Per entry: [id, length] (an Int32Array over the whole ring, HEAD_BYTES / 4 words per entry). */
  readonly #heads: Int32Array
  readonly #bodies: Uint8Array[] = []

  constructor (texts: Uint8Array) {
    this.#heads = new Int32Array(texts.buffer, texts.byteOffset, texts.byteLength / 4)
    for (let i = 0; i < REQUEST_TEXTS; i++) this.#bodies.push(texts.subarray(i * ENTRY_BYTES + HEAD_BYTES, (i + 1) * ENTRY_BYTES))
  }

  /** When the thread takes request `id`. The id goes last: a reader that finds it finds its text. */
  write (id: number, method: string, uri: string, script: string): void {
    const entry = id % REQUEST_TEXTS
    const body = this.#bodies[entry]!
    // ASCII, the common case, byte by byte (no joined string, no call into the encoder).
    let at = writeAscii(body, 0, method)
    if (at >= 0 && at < body.length) { body[at++] = 0x09; at = writeAscii(body, at, uri) }
    if (at >= 0 && at < body.length) { body[at++] = 0x09; at = writeAscii(body, at, script) }
    const written = at >= 0 ? at : encoder.encodeInto(`${method}\t${uri}\t${script}`, body).written
    const head = entry * (ENTRY_BYTES / 4)
    this.#heads[head + 1] = written
    Atomics.store(this.#heads, head, id)
  }
}

/** Writes `text` at `at` when it is ASCII (cut at the end of `into`); -1 when it is not. */
function writeAscii (into: Uint8Array, at: number, text: string): number {
  const end = Math.min(text.length, into.length - at)
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0x80) return -1
    into[at + i] = c
  }
  return at + end
}

/** The main thread: request `id` as its thread described it; null when the entry holds another request by now. */
export function readRequestText (texts: Uint8Array, id: number): { method: string, uri: string, script: string } | null {
  const at = (id % REQUEST_TEXTS) * ENTRY_BYTES
  const heads = new Int32Array(texts.buffer, texts.byteOffset + at, HEAD_BYTES / 4)
  if (Atomics.load(heads, 0) !== id) return null
  const length = Math.min(heads[1] ?? 0, ENTRY_BYTES - HEAD_BYTES)
  const [method = '', uri = '', script = ''] = decoder.decode(texts.slice(at + HEAD_BYTES, at + HEAD_BYTES + length)).split('\t')
  return { method, uri, script }
}
