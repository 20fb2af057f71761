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

/** The thread, when it takes request `id`. */
export function writeRequestText (texts: Uint8Array, id: number, method: string, uri: string, script: string): void {
  const at = (id % REQUEST_TEXTS) * ENTRY_BYTES
  const view = new DataView(texts.buffer, texts.byteOffset + at, HEAD_BYTES)
  const { written } = encoder.encodeInto(`${method}\t${uri}\t${script}`, texts.subarray(at + HEAD_BYTES, at + ENTRY_BYTES))
  view.setInt32(4, written)
  view.setInt32(0, id)
}

/** The main thread: request `id` as its thread described it; null when the entry holds another request by now. */
export function readRequestText (texts: Uint8Array, id: number): { method: string, uri: string, script: string } | null {
  const at = (id % REQUEST_TEXTS) * ENTRY_BYTES
  const view = new DataView(texts.buffer, texts.byteOffset + at, HEAD_BYTES)
  if (view.getInt32(0) !== id) return null
  const length = Math.min(view.getInt32(4), ENTRY_BYTES - HEAD_BYTES)
  const [method = '', uri = '', script = ''] = decoder.decode(texts.slice(at + HEAD_BYTES, at + HEAD_BYTES + length)).split('\t')
  return { method, uri, script }
}
