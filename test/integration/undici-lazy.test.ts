// A worker thread loads undici (Node's Fetch API) only when a handler needs it
// (src/worker/undici-classes.ts): a thread that answered with light Requests and Responses has not
// loaded it, and once something needs it (a subclass of Response, request.headers, fetch) every
// global still behaves as undici's. One thread, so the steps run in order on the same thread
// (test/fixtures/apps/undici-lazy.mjs).

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { APPS, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const CONFIG = `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = {{ROOT}}
`

const APP = join(APPS, 'undici-lazy.mjs')

interface Answer { before: boolean, after: boolean, detail: unknown }

let fpm: FpmHandle

before(async () => {
  fpm = await startFpm(CONFIG, { args: ['--no-supervisor'] })
})

after(async () => {
  assert.equal(await fpm?.stop(), 0)
})

async function step (name: string, headers: Array<[string, string]> = []): Promise<Answer> {
  const params = buildCgiParams({ uri: `/undici-lazy.mjs?step=${name}`, scriptFilename: APP, headers })
  const res = await fcgiRequest(`127.0.0.1:${fpm.port}`, { params }, { timeoutMs: 10_000 })
  assert.equal(res.status, 200, res.body.toString())
  assert.deepEqual(res.headers, [['Cache-Control', 'no-store'], ['Content-Type', 'application/json'], ['X-Step', name]])
  return JSON.parse(res.body.toString()) as Answer
}

describe('undici loads in a thread when a handler needs it', () => {
  it('not for light Requests and Responses, nor for instanceof and the globals\' own members', async () => {
    assert.deepEqual(await step('light'), { before: false, after: false, detail: null })
    assert.deepEqual(await step('classes'), {
      before: false,
      after: false,
      detail: {
        lightIsResponse: true,
        requestIsRequest: true,
        tags: ['[object Response]', '[object Request]'],
        names: ['Response', 'Request', 'fetch'],
        lengths: [0, 1, 1, 1, 1],
        notAResponse: false
      }
    })
  })

  it('for a subclass of Response: undici\'s prototype, and instanceof holds for every kind', async () => {
    assert.deepEqual(await step('subclass'), {
      before: false,
      after: true,
      detail: { isResponse: true, isSub: true, status: 203, text: 'sub', prototypeChain: true, constructor: true, lightAfterLoad: true }
    })
  })

  it('once loaded: request.headers, fetch() and the statics as undici gives them', async () => {
    assert.deepEqual(await step('headers', [['X-Test', 'yes']]), { before: true, after: true, detail: 'yes' })
    assert.deepEqual(await step('fetch'), { before: true, after: true, detail: { isResponse: true, text: 'fetched', error: 'error' } })
  })
})
