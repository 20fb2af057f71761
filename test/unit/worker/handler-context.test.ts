// RequestState edge cases, driven in this thread over a real MessageChannel with small handler
// modules written to a temporary folder (the thread tests cover the same paths through piscina).

import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import { bodyBytes, Msg } from '../../../src/common/messages.ts'
import type { LogMessage, WorkerMessage, WorkerResult } from '../../../src/common/messages.ts'
import { RequestState } from '../../../src/worker/handler-context.ts'

const dir = mkdtempSync(join(tmpdir(), 'fpm-state-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let nextId = 1

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `source` (a module whose default export is the handler) as one request. */
async function run (source: string, options: { method?: string, settleMs?: number, onStart?: (state: RequestState) => void } = {}): Promise<{ result: WorkerResult, messages: WorkerMessage[] }> {
  const id = nextId++
  const script = join(dir, `handler-${id}.mjs`)
  writeFileSync(script, source)
  const { port1, port2 } = new MessageChannel()
  const messages: WorkerMessage[] = []
  port2.on('message', (msg: WorkerMessage) => {
    messages.push(msg)
    if ((msg.t === Msg.HEAD || msg.t === Msg.CHUNK) && msg.body !== null) port2.postMessage({ t: Msg.ACK, id, bytes: msg.body.byteLength })
  })
  port1.on('message', (msg: { t: number, bytes: number }) => { if (msg.t === Msg.ACK) state.onAck(msg.bytes) })
  const state = new RequestState({ id, script, params: ['REQUEST_METHOD', options.method ?? 'GET', 'HTTP_HOST', 'h'], body: null, bodyStreaming: false, isHead: false, claim: -1 }, port1, {})
  options.onStart?.(state)
  const result = await state.run()
  await sleep(options.settleMs ?? 20)
  port1.close()
  port2.close()
  return { result, messages }
}

const text = (body: Uint8Array | string | null | undefined): string => body == null ? '' : Buffer.from(bodyBytes(body) ?? []).toString()

describe('RequestState', () => {
  it('Response.error() is not a valid answer: 500 + FPM_ERR_HANDLER_INVALID', async () => {
    const { result } = await run('export default () => Response.error()\n')
    assert.match(result.response?.head ?? '', /^Status: 500 /)
    assert.equal(result.error?.code, 'FPM_ERR_HANDLER_INVALID')
    assert.match(result.error?.message ?? '', /status 0/)
  })

  it('an error thrown after finishRequest(): no 500, the error in the result, the response as sent', async () => {
    const { result, messages } = await run(`export default async (request, env, ctx) => {
      await ctx.finishRequest(new Response('sent'))
      throw new Error('after')
    }\n`)
    assert.equal(result.response, null)
    assert.equal(result.error?.message, 'after')
    assert.equal(messages.length, 1)
    assert.equal(messages[0]?.t, Msg.HEAD)
    assert.equal(text((messages[0] as { body: Uint8Array }).body), 'sent')
  })

  it('finishRequest() with a non-Response throws a TypeError at the call', async () => {
    const { result } = await run(`export default (request, env, ctx) => {
      try { ctx.finishRequest('nope') } catch (err) { return new Response(err.constructor.name + ': ' + err.message) }
      return new Response('no throw')
    }\n`)
    assert.equal(text(result.response?.body), 'TypeError: finishRequest() takes a Response or nothing, got the string "nope"')
  })

  it('finishRequest(response) while the returned response is streaming: it ends that one, discards the new one', async () => {
    const { result, messages } = await run(`export default (request, env, ctx) => {
      let i = 0
      const body = new ReadableStream({
        async pull (c) { await new Promise((r) => setTimeout(r, 5)); c.enqueue(new TextEncoder().encode('x')); if (++i === 3) ctx.waitUntil(ctx.finishRequest(new Response('other')).then((v) => { if (v !== true) throw new Error('got ' + v) })) }
      }, { highWaterMark: 0 })
      ctx.waitUntil(new Promise((r) => setTimeout(r, 10)))
      return new Response(body)
    }\n`)
    assert.deepEqual(result, { response: null, error: null })
    const data = messages.filter((m) => m.t === Msg.HEAD || m.t === Msg.CHUNK)
    assert.equal(data.filter((m) => (m as { end: boolean }).end).length, 1)
    assert.match(data.map((m) => text((m as { body: Uint8Array | null }).body)).join(''), /^x+$/)
    assert.equal(messages.filter((m) => m.t === Msg.LOG).length, 0)
  })

  it('a handler fault while waitUntil work is pending: the 500 goes on the channel at once', async () => {
    const { result, messages } = await run(`export default (request, env, ctx) => {
      ctx.waitUntil(new Promise((r) => setTimeout(r, 30)))
      throw new Error('boom')
    }\n`)
    assert.equal(result.response, null)
    assert.equal(result.error?.message, 'boom')
    assert.equal(messages[0]?.t, Msg.HEAD)
    assert.match((messages[0] as { head: string }).head, /^Status: 500 /)
    assert.equal((messages[0] as { end: boolean }).end, true)
  })

  it('waitUntil() after the request ended: a warning, and its rejection is still logged', async () => {
    const { result, messages } = await run(`export default (request, env, ctx) => {
      setTimeout(() => ctx.waitUntil(Promise.reject(new Error('late'))), 5)
      return new Response('ok')
    }\n`, { settleMs: 40 })
    assert.equal(text(result.response?.body), 'ok')
    const logs = messages.filter((m): m is LogMessage => m.t === Msg.LOG)
    assert.deepEqual(logs.map((l) => [l.level, l.err?.message ?? null]), [['warn', null], ['error', 'late']])
  })

  it('a second error in the same request is logged, the first stays in the result', async () => {
    const { result, messages } = await run(`export default (request, env, ctx) => {
      ctx.waitUntil(Promise.resolve())
      const body = new ReadableStream({ pull (c) { c.enqueue(new Uint8Array(1)); return new Promise((r, j) => setTimeout(() => j(new Error('second')), 5)) } })
      ctx.finishRequest(new Response(body))
      throw new Error('first')
    }\n`)
    assert.equal(result.error?.message, 'first')
    const logs = messages.filter((m): m is LogMessage => m.t === Msg.LOG)
    assert.equal(logs[0]?.err?.message, 'second')
  })

  it('ABORT before the handler runs: it does not run, nothing is sent', async () => {
    const { result, messages } = await run('export default () => { throw new Error("ran") }\n', {
      onStart: (state) => state.abort('early')
    })
    assert.deepEqual(result, { response: null, error: null })
    assert.equal(messages.length, 0)
  })

  it('passThroughOnException() exists and does nothing', async () => {
    const { result } = await run('export default (request, env, ctx) => { ctx.passThroughOnException(); return new Response("fine") }\n')
    assert.equal(text(result.response?.body), 'fine')
  })
})
