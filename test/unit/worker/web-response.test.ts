// Response -> CGI head (pure) and the ResponseSender, driven in this thread over a real MessageChannel.

import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MessageChannel } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { canonicalHeaderName, copyExact, FAST_PATH_MAX_BYTES, isExact, lightBodyBytes, ResponseSender, SendOutcome, serializeHead, serializeLightHead } from '../../../src/worker/web-response.ts'
import { Msg, RESPONSE_WINDOW_BYTES, TRANSFER_MIN_BYTES } from '../../../src/common/messages.ts'
import type { ChunkMessage, HeadMessage } from '../../../src/common/messages.ts'

describe('serializeHead', () => {
  it('omits the Status line for 200 and writes canonical header names', () => {
    const head = serializeHead(new Response('x', { headers: { 'content-type': 'text/html', 'x-request-id': 'abc', 'cache-control': 'no-store' } }))
    assert.equal(head, 'Cache-Control: no-store\r\nContent-Type: text/html\r\nX-Request-Id: abc\r\n\r\n')
  })

  it('writes "Status: <code> <reason>" from statusText, else STATUS_CODES, else the code alone', () => {
    assert.equal(serializeHead(new Response(null, { status: 404 })), 'Status: 404 Not Found\r\n\r\n')
    assert.equal(serializeHead(new Response(null, { status: 404, statusText: 'Nothing Here' })), 'Status: 404 Nothing Here\r\n\r\n')
    assert.equal(serializeHead(new Response(null, { status: 299 })), 'Status: 299\r\n\r\n')
    assert.equal(serializeHead(Response.redirect('http://h/next', 302)), 'Status: 302 Found\r\nLocation: http://h/next\r\n\r\n')
  })

  it('writes every Set-Cookie on its own line and drops a "status" header', () => {
    const headers = new Headers()
    headers.append('Set-Cookie', 'a=1; Path=/')
    headers.append('Set-Cookie', 'b=2; HttpOnly')
    headers.append('status', '404')
    headers.append('vary', 'accept')
    headers.append('vary', 'cookie')
    assert.equal(serializeHead(new Response(null, { status: 201, headers })),
      'Status: 201 Created\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\nVary: accept, cookie\r\n\r\n')
  })

  it('keeps latin1 header values byte for byte', () => {
    assert.equal(serializeHead(new Response(null, { headers: { 'x-name': 'Jos\u00e9' } })), 'X-Name: Jos\u00e9\r\n\r\n')
  })

  it('canonicalHeaderName', () => {
    assert.equal(canonicalHeaderName('content-type'), 'Content-Type')
    assert.equal(canonicalHeaderName('x-a-b'), 'X-A-B')
    assert.equal(canonicalHeaderName('etag'), 'ETag')
    assert.equal(canonicalHeaderName('www-authenticate'), 'WWW-Authenticate')
    assert.equal(canonicalHeaderName('content-type'), 'Content-Type') // cached
  })
})

describe('isExact / copyExact', () => {
  it('tells views that cover their whole buffer', () => {
    assert.equal(isExact(new Uint8Array(4)), true)
    assert.equal(isExact(new Uint8Array(8).subarray(2, 6)), false)
    assert.equal(isExact(Buffer.from('small')), false) // Node's shared pool
    const copy = copyExact(new Uint8Array([1, 2, 3, 4]).subarray(1, 3), 0, 2)
    assert.deepEqual([...copy], [2, 3])
    assert.equal(isExact(copy), true)
    const piece = copyExact(Buffer.from('abcdef'), 2, 4)
    assert.equal(Object.getPrototypeOf(piece), Uint8Array.prototype)
    assert.equal(Buffer.from(piece).toString(), 'cd')
  })
})

// ---- the sender ----

interface Sent { msg: HeadMessage | ChunkMessage, at: number }

const channels: MessagePort[] = []
afterEach(() => {
  for (const port of channels.splice(0)) port.close()
})

function setup (body: ReadableStream<Uint8Array> | Uint8Array | null, gate: boolean | null = true, head = 'H\r\n\r\n'): { sender: ResponseSender, sent: Sent[], settle: () => Promise<void> } {
  const { port1, port2 } = new MessageChannel()
  channels.push(port1, port2)
  const sent: Sent[] = []
  port2.on('message', (msg: HeadMessage | ChunkMessage) => sent.push({ msg, at: performance.now() }))
  const sender = new ResponseSender(1, port1, head, body, gate === null ? null : { canUseFastPath: () => gate })
  return { sender, sent, settle: () => new Promise((resolve) => setTimeout(resolve, 30)) }
}

function bytesOf (sent: Sent[]): number {
  let n = 0
  for (const { msg } of sent) n += msg.body?.byteLength ?? 0
  return n
}

function text (sent: Sent[]): string {
  return sent.map(({ msg }) => msg.body === null ? '' : Buffer.from(msg.body).toString()).join('')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A stream from a script: numbers are pauses (ms), strings/Uint8Arrays are chunks, an Error errors it. */
function scripted (steps: Array<string | Uint8Array | number | Error>, onCancel?: (reason: unknown) => void): ReadableStream<Uint8Array> {
  let i = 0
  return new ReadableStream<Uint8Array>({
    async pull (controller) {
      for (;;) {
        const step = steps[i++]
        if (step === undefined) { controller.close(); return }
        if (typeof step === 'number') { await sleep(step); continue }
        if (step instanceof Error) throw step
        controller.enqueue(typeof step === 'string' ? new TextEncoder().encode(step) : step)
        // Several chunks in a row are available at once; a pause ends this pull.
        if (typeof steps[i] === 'number' || steps[i] === undefined) return
      }
    },
    cancel (reason) { onCancel?.(reason) }
  }, { highWaterMark: 0 })
}

describe('ResponseSender', () => {
  it('fast path: a prompt body within 64 KiB is returned, nothing is sent', async () => {
    const { sender, sent, settle } = setup(new Response('hello').body)
    assert.equal(await sender.start(), SendOutcome.FAST)
    assert.equal(Buffer.from(sender.fastBody ?? []).toString(), 'hello')
    assert.ok(sender.fastBody !== null && isExact(sender.fastBody))
    await settle()
    assert.equal(sent.length, 0)
  })

  it('fast path: no body, and many small prompt chunks (one exact buffer)', async () => {
    const none = setup(null)
    assert.equal(await none.sender.start(), SendOutcome.FAST)
    assert.equal(none.sender.fastBody, null)
    const many = setup(scripted(['a', 'b', 'c', 'd']))
    assert.equal(await many.sender.start(), SendOutcome.FAST)
    assert.equal(Buffer.from(many.sender.fastBody ?? []).toString(), 'abcd')
  })

  it('exactly 64 KiB is still the fast path, one byte more is not', async () => {
    const fits = setup(new Response(new Uint8Array(FAST_PATH_MAX_BYTES)).body)
    assert.equal(await fits.sender.start(), SendOutcome.FAST)
    const over = setup(new Response(new Uint8Array(FAST_PATH_MAX_BYTES + 1)).body)
    const outcome = await Promise.race([over.sender.start(), sleep(2000).then(() => 'still waiting for the window')])
    assert.equal(outcome, SendOutcome.CHANNEL)
    await over.settle()
    assert.equal(over.sent[0]?.msg.t, Msg.HEAD)
    assert.equal(bytesOf(over.sent), FAST_PATH_MAX_BYTES + 1)
    assert.equal(over.sent.at(-1)?.msg.end, true)
  })

  it('a pending waitUntil (gate closed) sends the whole response at once on the channel', async () => {
    const { sender, sent, settle } = setup(new Response('hello').body, false)
    assert.equal(await sender.start(), SendOutcome.CHANNEL)
    await settle()
    assert.deepEqual(sent.map((s) => s.msg), [{ t: Msg.HEAD, id: 1, head: 'H\r\n\r\n', body: new Uint8Array(Buffer.from('hello')), end: true }])
  })

  it('a pausing stream (SSE-like) is flushed when it pauses, head first', async () => {
    const started = performance.now()
    const { sender, sent, settle } = setup(scripted(['event: a\n\n', 600, 'event: b\n\n']))
    const done = sender.start()
    while (sent.length === 0 && performance.now() - started < 500) await sleep(5)
    assert.equal(sent.length, 1, 'the first event went out before the pause ended')
    assert.equal(sent[0]?.msg.t, Msg.HEAD)
    assert.equal(text(sent), 'event: a\n\n')
    assert.ok((sent[0]?.at ?? Infinity) - started < 500)
    assert.equal(await done, SendOutcome.CHANNEL)
    await settle()
    assert.equal(text(sent), 'event: a\n\nevent: b\n\n')
    assert.equal(sent.at(-1)?.msg.end, true)
  })

  it('a body that starts late gets its head sent at once (no body yet)', async () => {
    const { sender, sent, settle } = setup(scripted([200, 'late']))
    const started = performance.now()
    const done = sender.start()
    while (sent.length === 0 && performance.now() - started < 150) await sleep(5)
    assert.equal(sent.length, 1)
    assert.deepEqual(sent[0]?.msg, { t: Msg.HEAD, id: 1, head: 'H\r\n\r\n', body: null, end: false })
    await done
    await settle()
    assert.equal(text(sent), 'late')
  })

  it('coalesces small chunks that are already available into one message', async () => {
    const { sender, sent, settle } = setup(scripted(['first', 50, 'a', 'b', 'c', 'd', 'e', 50, 'z']))
    assert.equal(await sender.start(), SendOutcome.CHANNEL)
    await settle()
    // The end came promptly after 'z': it rides on the same message.
    assert.deepEqual(sent.map(({ msg }) => msg.body === null ? null : Buffer.from(msg.body).toString()), ['first', 'abcde', 'z'])
    assert.deepEqual(sent.map(({ msg }) => msg.end), [false, false, true])
  })

  it('transfers exact chunks >= TRANSFER_MIN_BYTES, copies views into exact buffers', async () => {
    const exact = new Uint8Array(TRANSFER_MIN_BYTES).fill(1)
    const backing = new Uint8Array(TRANSFER_MIN_BYTES * 3).fill(2)
    const view = backing.subarray(10, 10 + TRANSFER_MIN_BYTES)
    const { sender, sent, settle } = setup(scripted([exact, 20, view, 20]))
    assert.equal(await sender.start(), SendOutcome.CHANNEL)
    await settle()
    assert.equal(exact.byteLength, 0, 'the exact chunk was moved (detached here)')
    assert.equal(backing.byteLength, TRANSFER_MIN_BYTES * 3, 'the view was copied, its buffer stays')
    for (const { msg } of sent) if (msg.body !== null) assert.ok(isExact(msg.body))
    assert.equal(bytesOf(sent), TRANSFER_MIN_BYTES * 2)
  })

  it('never has more than RESPONSE_WINDOW_BYTES un-ACKed, and goes on with ACKs', async () => {
    const chunk = 64 * 1024
    const total = 4 * RESPONSE_WINDOW_BYTES
    let produced = 0
    const body = new ReadableStream<Uint8Array>({
      pull (controller) {
        if (produced >= total) { controller.close(); return }
        produced += chunk
        controller.enqueue(new Uint8Array(chunk))
      }
    }, { highWaterMark: 0 })
    const { sender, sent, settle } = setup(body)
    let outcome: SendOutcome | null = null
    void sender.start().then((o) => { outcome = o })
    while (bytesOf(sent) < RESPONSE_WINDOW_BYTES / 2) await sleep(5)
    await sleep(50)
    const stalled = bytesOf(sent)
    assert.ok(stalled <= RESPONSE_WINDOW_BYTES, `${stalled} bytes in flight`)
    assert.ok(stalled >= RESPONSE_WINDOW_BYTES / 2)
    assert.ok(produced < total, 'the body is not read ahead of the window')
    let acked = 0
    while (outcome === null) {
      const inFlight = bytesOf(sent) - acked
      assert.ok(inFlight <= RESPONSE_WINDOW_BYTES, `${inFlight} bytes in flight`)
      sender.ack(inFlight)
      acked += inFlight
      await sleep(5)
    }
    await settle()
    assert.equal(outcome, SendOutcome.CHANNEL)
    assert.equal(bytesOf(sent), total)
    assert.equal(sent.at(-1)?.msg.end, true)
  })

  it('splits a chunk larger than the window into window-sized exact pieces', async () => {
    const big = new Uint8Array(RESPONSE_WINDOW_BYTES * 2 + 5)
    const { sender, sent, settle } = setup(new Response(big).body)
    let outcome: SendOutcome | null = null
    void sender.start().then((o) => { outcome = o })
    let acked = 0
    while (outcome === null) {
      await sleep(10)
      const inFlight = bytesOf(sent) - acked
      assert.ok(inFlight <= RESPONSE_WINDOW_BYTES, `${inFlight} bytes in flight`)
      sender.ack(inFlight)
      acked += inFlight
    }
    assert.equal(outcome, SendOutcome.CHANNEL)
    await settle()
    assert.equal(bytesOf(sent), big.byteLength + 0)
    for (const { msg } of sent) {
      if (msg.body !== null) assert.ok(isExact(msg.body) && msg.body.byteLength <= RESPONSE_WINDOW_BYTES / 2)
    }
  })

  it('a body that fails after the head: CHUNK {end, failed} and FAILED_AFTER_HEAD', async () => {
    const boom = Object.assign(new Error('boom'), { code: 'E_BOOM' })
    const { sender, sent, settle } = setup(scripted(['part', 30, boom]))
    assert.equal(await sender.start(), SendOutcome.FAILED_AFTER_HEAD)
    assert.equal(sender.error, boom)
    await settle()
    assert.equal(sent[0]?.msg.t, Msg.HEAD)
    assert.deepEqual(sent.at(-1)?.msg, { t: Msg.CHUNK, id: 1, body: null, end: true, failed: true })
  })

  it('a body that fails before anything was sent: FAILED_BEFORE_HEAD, nothing sent', async () => {
    const { sender, sent, settle } = setup(scripted(['buffered', new Error('early')]))
    assert.equal(await sender.start(), SendOutcome.FAILED_BEFORE_HEAD)
    await settle()
    assert.equal(sent.length, 0)
  })

  it('a chunk that is not bytes fails the body; strings are accepted as UTF-8', async () => {
    const strings = setup(new ReadableStream<string>({ start (c) { c.enqueue('h\u00e9'); c.close() } }) as unknown as ReadableStream<Uint8Array>)
    assert.equal(await strings.sender.start(), SendOutcome.FAST)
    assert.equal(Buffer.from(strings.sender.fastBody ?? []).toString(), 'h\u00e9')
    const numbers = setup(new ReadableStream({ start (c) { c.enqueue(42); c.close() } }) as unknown as ReadableStream<Uint8Array>)
    assert.equal(await numbers.sender.start(), SendOutcome.FAILED_BEFORE_HEAD)
    assert.ok(numbers.sender.error instanceof TypeError)
  })

  it('abort() while waiting for the window: resolves ABORTED, cancels the body, sends nothing more', async () => {
    let cancelReason: unknown = null
    let n = 0
    const body = new ReadableStream<Uint8Array>({
      pull (controller) { n++; controller.enqueue(new Uint8Array(64 * 1024)) },
      cancel (reason) { cancelReason = reason }
    }, { highWaterMark: 0 })
    const { sender, sent, settle } = setup(body)
    const done = sender.start()
    await sleep(30)
    const before = sent.length
    const reason = new Error('client went away')
    sender.abort(reason)
    assert.equal(await done, SendOutcome.ABORTED)
    await settle()
    assert.equal(sent.length, before)
    assert.equal(cancelReason, reason)
    assert.ok(n * 64 * 1024 < RESPONSE_WINDOW_BYTES + 10 * 64 * 1024, `${n} chunks read: the window did not hold the body back`)
  })

  it('cut() ends a never-ending stream where it is; a second cut() is false', async () => {
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      async pull (controller) { await sleep(10); controller.enqueue(new TextEncoder().encode('.')) },
      cancel () { cancelled = true }
    }, { highWaterMark: 0 })
    const { sender, sent, settle } = setup(body)
    const done = sender.start()
    await sleep(60)
    const cut = sender.cut()
    assert.equal(await sender.cut(), false)
    assert.equal(await cut, true)
    assert.equal(await done, SendOutcome.CHANNEL)
    assert.equal(cancelled, true)
    await settle()
    assert.equal(sent.at(-1)?.msg.end, true)
    assert.equal(sent.filter(({ msg }) => msg.end).length, 1)
    assert.match(text(sent), /^\.+$/)
  })

  it('gate null (finishRequest): a prompt small body goes out as one HEAD with end', async () => {
    const { sender, sent, settle } = setup(new Response('now').body, null)
    assert.equal(await sender.start(), SendOutcome.CHANNEL)
    await settle()
    assert.equal(sent.length, 1)
    assert.equal(sent[0]?.msg.end, true)
    assert.equal(text(sent), 'now')
  })
})

describe('a light Response: head from the record, bytes without a stream', () => {
  it('serializeLightHead writes what serializeHead writes for the same Response', () => {
    assert.equal(serializeLightHead({ status: 200, statusText: '', headers: null, headerPairs: null, contentType: 'text/plain;charset=UTF-8', body: 'x' }),
      serializeHead(new Response('x')))
    assert.equal(serializeLightHead({ status: 404, statusText: '', headers: null, headerPairs: null, contentType: null, body: null }),
      serializeHead(new Response(null, { status: 404 })))
    const headers = new Headers([['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['status', '500'], ['content-type', 'text/html']])
    assert.equal(serializeLightHead({ status: 201, statusText: 'Made', headers, headerPairs: null, contentType: 'text/plain;charset=UTF-8', body: 'x' }),
      serializeHead(new Response('x', { status: 201, statusText: 'Made', headers })))
    const pairs = ['content-type', 'text/html', 'set-cookie', 'a=1', 'status', '500', 'x-b', '2']
    assert.equal(serializeLightHead({ status: 201, statusText: 'Made', headers: null, headerPairs: pairs, contentType: 'text/plain;charset=UTF-8', body: 'x' }),
      serializeHead(new Response('x', { status: 201, statusText: 'Made', headers: { 'X-B': '2', Status: '500', 'set-cookie': 'a=1', 'content-type': 'text/html' } })))
  })

  it('lightBodyBytes: exact buffers, UTF-8 as undici encodes, null when empty', () => {
    assert.equal(lightBodyBytes(null), null)
    assert.equal(lightBodyBytes(''), null)
    assert.equal(lightBodyBytes(new Uint8Array(0)), null)
    const own = new Uint8Array([1, 2])
    assert.equal(lightBodyBytes(own), own, 'the Response\'s own copy is used as is')
    for (const text of ['caf\u00e9 \ud83d\ude00 \ud800', 'y'.repeat(FAST_PATH_MAX_BYTES)]) {
      const bytes = lightBodyBytes(text)
      assert.ok(bytes !== null && isExact(bytes))
      assert.deepEqual(Buffer.from(bytes), Buffer.from(new TextEncoder().encode(text)))
    }
  })

  it('the sender: the bytes themselves on the fast path; the channel beyond 64 KiB or with the gate closed', async () => {
    const small = new Uint8Array([104, 105])
    const fast = setup(small)
    assert.equal(await fast.sender.start(), SendOutcome.FAST)
    assert.equal(fast.sender.fastBody, small)
    await fast.settle()
    assert.equal(fast.sent.length, 0)

    const gated = setup(new Uint8Array([104, 105]), false)
    assert.equal(await gated.sender.start(), SendOutcome.CHANNEL)
    await gated.settle()
    assert.deepEqual(gated.sent.map((s) => s.msg), [{ t: Msg.HEAD, id: 1, head: 'H\r\n\r\n', body: new Uint8Array([104, 105]), end: true }])

    // A whole body the sender owns, past the window, goes in one message and is moved, not copied:
    // it is in memory already (a stream's chunks wait for the window: the tests above).
    const total = RESPONSE_WINDOW_BYTES * 2 + 5
    const whole = new Uint8Array(total).fill(7)
    const over = setup(whole)
    const outcome = await Promise.race([over.sender.start(), sleep(2000).then(() => 'still waiting for the window')])
    assert.equal(outcome, SendOutcome.CHANNEL)
    await over.settle()
    assert.equal(over.sent[0]?.msg.t, Msg.HEAD)
    assert.equal(over.sent[0]?.msg.body?.byteLength, total)
    assert.equal(over.sent.at(-1)?.msg.end, true)
    assert.equal(bytesOf(over.sent), total)
    assert.equal(over.sent[0]?.msg.body?.[total - 1], 7)
    assert.equal(whole.byteLength, 0, 'moved to the other side (detached here), not copied')
  })
})
