// The worker's channel in a real Piscina thread: streamed responses (HEAD/CHUNK), the ACK window,
// the streaming request body (PULL/BODY) and ABORT.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BODY_PULL_BYTES, bodyBytes, Msg, RESPONSE_WINDOW_BYTES, TRANSFER_MIN_BYTES } from '../../../src/common/messages.ts'
import type { ChunkMessage, HeadMessage, PullMessage } from '../../../src/common/messages.ts'
import { cgi, Harness, sleep } from './harness.ts'

const STREAM_HEAD = 'Content-Type: application/octet-stream\r\n\r\n'
const isData = (m: { t: number }): m is HeadMessage | ChunkMessage => m.t === Msg.HEAD || m.t === Msg.CHUNK
const pulls = (messages: Array<{ t: number }>): PullMessage[] => messages.filter((m): m is PullMessage => m.t === Msg.PULL)

describe('worker thread: streamed responses', () => {
  let h: Harness
  before(async () => {
    h = await Harness.start()
    await h.run('stream.mjs').result // load the module once
  })
  after(() => h.close())

  it('a paced stream: HEAD with the first chunk, then CHUNKs, end; no fast-path result', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=3&size=5&delay=30' }), autoAck: true })
    const result = await run.result
    assert.deepEqual(result, { response: null, error: null })
    await run.log.until(() => run.log.ended)
    const data = run.log.messages.filter(isData)
    assert.deepEqual(data[0], { t: Msg.HEAD, id: run.id, head: STREAM_HEAD, body: new Uint8Array(5), end: false })
    assert.deepEqual(data.slice(1).map((m) => [m.t, m.body === null ? null : [...m.body], m.end, (m as ChunkMessage).failed]), [
      [Msg.CHUNK, [1, 1, 1, 1, 1], false, false],
      [Msg.CHUNK, [2, 2, 2, 2, 2], true, false]
    ])
  })

  it('flushes what a pausing stream produced right away (SSE), long before the next chunk', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=2&size=10&delay=600' }), autoAck: true })
    await run.log.until((m) => m.length >= 1, 400)
    assert.equal(run.log.bodyBytes, 10)
    assert.equal(run.settled, false)
    await run.result
    await run.log.until(() => run.log.ended)
    assert.equal(run.log.bodyBytes, 20)
  })

  it('stops at RESPONSE_WINDOW_BYTES until ACKed, transfers exact buffers, then finishes', async () => {
    const chunks = 32
    const size = 64 * 1024
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: `/?chunks=${chunks}&size=${size}` }) })
    await run.log.until(() => run.log.bodyBytes >= RESPONSE_WINDOW_BYTES / 2)
    await sleep(100)
    assert.ok(run.log.bodyBytes <= RESPONSE_WINDOW_BYTES, `${run.log.bodyBytes} bytes un-ACKed`)
    assert.equal(run.settled, false, 'the worker waits for ACKs')
    let acked = 0
    while (!run.log.ended) {
      const inFlight = run.log.bodyBytes - acked
      assert.ok(inFlight <= RESPONSE_WINDOW_BYTES, `${inFlight} bytes in flight`)
      if (inFlight > 0) {
        h.send({ t: Msg.ACK, id: run.id, bytes: inFlight })
        acked += inFlight
      }
      await run.log.until(() => run.log.bodyBytes > acked || run.log.ended)
    }
    assert.deepEqual(await run.result, { response: null, error: null })
    assert.equal(run.log.bodyBytes, chunks * size)
    const body = run.log.body
    for (let i = 0; i < chunks; i++) assert.equal(body[i * size], i, `chunk ${i}`)
    for (const m of run.log.messages.filter(isData)) {
      if (m.body === null) continue
      assert.equal(m.body.byteLength, m.body.buffer.byteLength, 'exact-size buffer')
      assert.ok(m.body.byteLength >= TRANSFER_MIN_BYTES)
    }
  })

  it('a single chunk bigger than 64 KiB goes out with the head, and the end follows', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?single=100000' }), autoAck: true })
    assert.deepEqual(await run.result, { response: null, error: null })
    await run.log.until(() => run.log.ended)
    const data = run.log.messages.filter(isData)
    assert.equal(data[0]?.t, Msg.HEAD)
    assert.equal(data[0]?.body?.byteLength, 100000)
    assert.equal(run.log.bodyBytes, 100000)
  })

  it('a body that breaks after the head: CHUNK {end, failed} and the error in the result', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=5&size=4&delay=20&fail=2' }), autoAck: true })
    const result = await run.result
    assert.equal(result.response, null)
    assert.equal(result.error?.code, 'E_STREAM')
    assert.equal(result.error?.message, 'stream broke at chunk 2')
    await run.log.until(() => run.log.ended)
    const last = run.log.messages.filter(isData).at(-1)
    assert.deepEqual(last, { t: Msg.CHUNK, id: run.id, body: null, end: true, failed: true })
    assert.equal(run.log.bodyBytes, 8)
  })

  it('HEAD requests get no body bytes even from a streaming body, which is cancelled', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_METHOD: 'HEAD', REQUEST_URI: '/?chunks=3&delay=500' }), isHead: true })
    assert.deepEqual(await run.result, { response: { head: STREAM_HEAD, body: null }, error: null })
    // hold=1: a waitUntil is pending when the response is ready, so it goes on the channel, and the
    // task settles only because the body stream was cancelled.
    const held = h.run('stream.mjs', { params: cgi({ REQUEST_METHOD: 'HEAD', REQUEST_URI: '/?chunks=3&delay=500&hold=1' }), isHead: true })
    assert.deepEqual(await held.result, { response: null, error: null })
    await held.log.until(() => held.log.ended)
    assert.deepEqual(held.log.messages, [{ t: Msg.HEAD, id: held.id, head: STREAM_HEAD, body: null, end: true }])
  })
})

describe('worker thread: streaming request body', () => {
  let h: Harness
  before(async () => { h = await Harness.start() })
  after(() => h.close())

  it('PULLs once per credit window and feeds BODY chunks to the handler', async () => {
    const run = h.run('echo.mjs', { params: cgi({ REQUEST_METHOD: 'POST', CONTENT_TYPE: 'application/x-test' }), bodyStreaming: true, autoAck: true })
    await run.log.until((m) => pulls(m).length === 1)
    assert.deepEqual(pulls(run.log.messages), [{ t: Msg.PULL, id: run.id, bytes: BODY_PULL_BYTES }])
    h.send({ t: Msg.BODY, id: run.id, body: new Uint8Array(100).fill(1), end: false, error: null })
    await sleep(50)
    assert.equal(pulls(run.log.messages).length, 1, 'no new PULL while credit is outstanding')
    h.send({ t: Msg.BODY, id: run.id, body: new Uint8Array(BODY_PULL_BYTES - 100).fill(2), end: false, error: null })
    await run.log.until((m) => pulls(m).length === 2)
    h.send({ t: Msg.BODY, id: run.id, body: new Uint8Array(10).fill(3), end: true, error: null })
    const result = await run.result
    assert.equal(result.error, null)
    await run.log.until(() => run.log.ended)
    assert.equal(run.log.head, `Content-Type: application/x-test\r\nX-Body-Length: ${BODY_PULL_BYTES + 10}\r\n\r\n`)
    const body = run.log.body
    assert.equal(body.byteLength, BODY_PULL_BYTES + 10)
    assert.deepEqual([body[0], body[99], body[100], body[BODY_PULL_BYTES - 1], body[BODY_PULL_BYTES]], [1, 1, 2, 2, 3])
  })

  it('a small streamed body still gets the fast path for the response', async () => {
    const run = h.run('echo.mjs', { params: cgi({ REQUEST_METHOD: 'POST' }), bodyStreaming: true })
    await run.log.until((m) => pulls(m).length === 1)
    h.send({ t: Msg.BODY, id: run.id, body: new TextEncoder().encode('tiny'), end: true, error: null })
    const result = await run.result
    assert.equal(Buffer.from(bodyBytes(result.response?.body ?? null) ?? []).toString(), 'tiny')
  })

  it('a BODY error reaches the handler as an error with that code', async () => {
    const run = h.run('echo.mjs', { params: cgi({ REQUEST_METHOD: 'POST' }), bodyStreaming: true })
    await run.log.until((m) => pulls(m).length === 1)
    h.send({ t: Msg.BODY, id: run.id, body: null, end: false, error: 'FPM_ERR_BODY_TOO_LARGE' })
    const result = await run.result
    assert.equal(result.error?.code, 'FPM_ERR_BODY_TOO_LARGE')
    assert.match(result.response?.head ?? '', /^Status: 500 /)
  })

  it('ABORT while the handler reads the body: the read fails, the task settles quietly', async () => {
    const run = h.run('echo.mjs', { params: cgi({ REQUEST_METHOD: 'POST' }), bodyStreaming: true })
    await run.log.until((m) => pulls(m).length === 1)
    h.send({ t: Msg.ABORT, id: run.id, reason: 'connection reset' })
    assert.deepEqual(await run.result, { response: null, error: null })
  })
})

describe('worker thread: ABORT', () => {
  let h: Harness
  before(async () => { h = await Harness.start() })
  after(() => h.close())

  it('fires request.signal with an FPM_ERR_REQUEST_ABORTED reason', async () => {
    const run = h.run('abort.mjs', { params: cgi({ REQUEST_METHOD: 'POST' }), bodyStreaming: true })
    await run.log.until((m) => pulls(m).length === 1) // the handler runs
    await sleep(20)
    assert.equal(run.settled, false)
    h.send({ t: Msg.ABORT, id: run.id, reason: 'client closed' })
    const result = await run.result
    assert.equal(result.response, null)
    assert.equal(result.error?.message, 'saw abort: FPM_ERR_REQUEST_ABORTED')
  })

  it('stops a streaming response: the body is cancelled, nothing more is sent', async () => {
    // hold=1: the task stays pending until the body stream is cancelled.
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=1000000&size=1000&delay=5&hold=1' }), autoAck: true })
    await run.log.until(() => run.log.bodyBytes >= 3000)
    h.send({ t: Msg.ABORT, id: run.id, reason: 'gone' })
    assert.deepEqual(await run.result, { response: null, error: null })
    const count = run.log.messages.length
    await sleep(50)
    assert.equal(run.log.messages.length, count)
    assert.equal(run.log.ended, false)
  })

  it('releases a worker that waits for ACKs', async () => {
    const run = h.run('stream.mjs', { params: cgi({ REQUEST_URI: '/?chunks=100&size=65536&hold=1' }) })
    await run.log.until(() => run.log.bodyBytes >= RESPONSE_WINDOW_BYTES / 2)
    await sleep(30)
    assert.equal(run.settled, false)
    h.send({ t: Msg.ABORT, id: run.id, reason: 'gone' })
    assert.deepEqual(await run.result, { response: null, error: null })
  })

  it('an ABORT that overtakes its task: the handler does not run', async () => {
    const id = h.nextId()
    h.send({ t: Msg.ABORT, id, reason: 'early' })
    await sleep(20)
    const run = h.run('throws.mjs', { id })
    assert.deepEqual(await run.result, { response: null, error: null })
    await sleep(20)
    assert.equal(run.log.messages.length, 0)
  })
})
