// ctx.finishRequest() and ctx.waitUntil() in a real Piscina thread: the response goes out before the
// task settles, and the task (the thread's busy state) waits for the work that follows.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { bodyBytes, Msg } from '../../../src/common/messages.ts'
import type { PullMessage } from '../../../src/common/messages.ts'
import { cgi, Harness, sleep } from './harness.ts'
import type { Running } from './harness.ts'

const POST = cgi({ REQUEST_METHOD: 'POST' })
const hasPull = (messages: Array<{ t: number }>): boolean => messages.some((m): m is PullMessage => m.t === Msg.PULL)

/** Ends the streaming request body of `run` (once the handler asks for it) with `text`. */
async function endBody (h: Harness, run: Running, text: string): Promise<void> {
  await run.log.until(hasPull)
  h.send({ t: Msg.BODY, id: run.id, body: new TextEncoder().encode(text), end: true, error: null })
}

describe('worker thread: ctx.finishRequest()', () => {
  let h: Harness
  before(async () => { h = await Harness.start() })
  after(() => h.close())

  it('sends the given response at once; the handler goes on; later calls are false', async () => {
    const run = h.run('finish.mjs', { params: POST, bodyStreaming: true })
    await run.log.until(() => run.log.ended)
    assert.deepEqual(run.log.messages[0], {
      t: Msg.HEAD,
      id: run.id,
      head: 'Status: 202 Accepted\r\nContent-Type: text/plain;charset=UTF-8\r\nX-Mode: response\r\n\r\n',
      body: new TextEncoder().encode('early'),
      end: true
    })
    await sleep(30)
    assert.equal(run.settled, false, 'the handler is still working')
    await endBody(h, run, 'the rest')
    const result = await run.result
    assert.equal(result.response, null)
    assert.equal(result.error?.code, 'E_REPORT')
    assert.deepEqual(JSON.parse(result.error?.message ?? ''), { first: true, second: false, body: 'the rest' })
  })

  it('with no response yet and no argument: an empty 200', async () => {
    const run = h.run('finish.mjs', { params: cgi({ REQUEST_METHOD: 'POST', REQUEST_URI: '/?mode=empty' }), bodyStreaming: true })
    await run.log.until(() => run.log.ended)
    assert.deepEqual(run.log.messages[0], { t: Msg.HEAD, id: run.id, head: '\r\n', body: null, end: true })
    await endBody(h, run, '')
    const result = await run.result
    assert.deepEqual(JSON.parse(result.error?.message ?? ''), { first: true, second: false, body: '' })
  })

  it('cuts a streaming response that the handler already returned', async () => {
    const run = h.run('finish.mjs', { params: cgi({ REQUEST_METHOD: 'POST', REQUEST_URI: '/?mode=cut' }), bodyStreaming: true, autoAck: true })
    await run.log.until(() => run.log.body.toString().includes('tick2'))
    assert.equal(run.log.ended, false)
    await endBody(h, run, '')
    await run.log.until(() => run.log.ended)
    const result = await run.result
    assert.deepEqual(result, { response: null, error: null })
    assert.match(run.log.body.toString(), /^(tick\d+\n)+$/)
    // The waitUntil work reported what finishRequest() returned by rejecting: a LOG message.
    await run.log.until(() => run.log.logs.length > 0)
    const log = run.log.logs[0]
    assert.equal(log?.level, 'error')
    assert.deepEqual(JSON.parse(log?.err?.message ?? ''), { first: true, second: false })
  })
})

describe('worker thread: ctx.waitUntil()', () => {
  let h: Harness
  before(async () => { h = await Harness.start() })
  after(() => h.close())

  it('the response goes out on the channel at once; the task settles when the work does', async () => {
    const run = h.run('wait-until.mjs', { params: POST, bodyStreaming: true })
    await run.log.until(() => run.log.ended)
    // (The background work already PULLed the body: that message may come first.)
    assert.deepEqual(run.log.messages.find((m) => m.t === Msg.HEAD), {
      t: Msg.HEAD,
      id: run.id,
      head: 'Status: 202 Accepted\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n',
      body: new TextEncoder().encode('queued'),
      end: true
    })
    await sleep(50)
    assert.equal(run.settled, false, 'waitUntil work keeps the task pending')
    await endBody(h, run, 'payload')
    assert.deepEqual(await run.result, { response: null, error: null })
  })

  it('a rejected waitUntil promise is logged (LOG, level error), the task still succeeds', async () => {
    const run = h.run('wait-until.mjs', { params: cgi({ REQUEST_METHOD: 'POST', REQUEST_URI: '/?mode=reject' }), bodyStreaming: true })
    await endBody(h, run, '')
    assert.deepEqual(await run.result, { response: null, error: null })
    await run.log.until(() => run.log.logs.length > 0)
    const log = run.log.logs[0]
    assert.equal(log?.t, Msg.LOG)
    assert.equal(log?.id, run.id)
    assert.equal(log?.level, 'error')
    assert.match(log?.msg ?? '', /waitUntil/)
    assert.equal(log?.err?.code, 'E_BACKGROUND')
    assert.equal(log?.err?.message, 'background work failed')
  })

  it('the thread stays usable', async () => {
    const result = await h.run('hello.mjs').result
    assert.equal(Buffer.from(bodyBytes(result.response?.body ?? null) ?? []).toString(), 'hello')
  })
})
