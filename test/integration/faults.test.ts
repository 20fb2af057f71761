// Errors no handler caught (src/worker/faults.ts), with real threads and a real server: an unhandled
// promise rejection is logged and the thread is kept; an uncaught exception (a throw from a timer) is
// logged and the thread is retired gracefully (its other requests finish, a new thread takes its
// place), and a request still waiting for the callback that threw gets 500 at once. Node's default
// would end the thread and fail every request running on it. One thread running two requests at
// once (pm.thread_concurrency = 2) shows that the other request is untouched.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import type { FcgiResponse } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/fault-apps')
const ERROR = 50
const WARN = 40

const CONFIG = `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
pm.thread_concurrency = 2
request_terminate_timeout_grace = 300ms
root = {{ROOT}}
`

async function get (fpm: FpmHandle, script: string, query = ''): Promise<FcgiResponse> {
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    const uri = `/${script}${query === '' ? '' : `?${query}`}`
    return await conn.request({ params: buildCgiParams({ uri, scriptFilename: join(APPS, script) }) }, { timeoutMs: 10_000 })
  } finally {
    await conn.close()
  }
}

async function thread (fpm: FpmHandle): Promise<string> {
  const res = await get(fpm, 'whoami.mjs')
  assert.equal(res.status, 200)
  return res.body.toString()
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const deaths = (fpm: FpmHandle): LogLine[] => fpm.logs.filter((l) => / exited with code /.test(l.msg) && l.level >= WARN)

describe('errors no handler caught', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('a rejection nobody awaits, at once or after the response: 200, logged with the pool, script and request; the thread is kept', async () => {
    const first = await thread(fpm)
    const slow = get(fpm, 'whoami.mjs', 'ms=400') // runs on the same thread meanwhile
    for (const query of ['', 'after=30']) {
      const res = await get(fpm, 'reject.mjs', query)
      assert.equal(res.status, 200)
      assert.equal(res.body.toString(), 'ok')
    }
    const uri = '/reject.mjs'
    const now = await fpm.waitForLog((l) => l.msg === `thread ${first}: unhandled promise rejection in script '${join(APPS, 'reject.mjs')}' (request: "GET ${uri}"): nobody awaits this; the thread is kept`)
    assert.equal(now.level, ERROR)
    assert.equal(now.pool, 'www')
    assert.equal(now.uri, uri)
    assert.match((now.err as { stack?: string }).stack ?? '', /^Error: nobody awaits this\n\s+at .*reject\.mjs:\d+:\d+/)
    const later = await fpm.waitForLog((l) => l.msg.startsWith(`thread ${first}: unhandled promise rejection in script`) && l.msg.includes('nobody awaits this either'))
    assert.equal(later.uri, `${uri}?after=30`)
    const other = await slow
    assert.equal(other.status, 200, 'the request running on the same thread is untouched')
    assert.equal(other.body.toString(), first)
    assert.equal(await thread(fpm), first, 'the same thread serves on')
    assert.deepEqual(deaths(fpm), [])
  })

  test('a throw from a timer after the response: 200, logged; the other request on the thread finishes; the thread is retired and replaced', async () => {
    const first = await thread(fpm)
    const slow = get(fpm, 'whoami.mjs', 'ms=400')
    await sleep(20)
    const res = await get(fpm, 'throw-after.mjs')
    assert.equal(res.status, 200)
    assert.equal(res.body.toString(), 'ok')
    const line = await fpm.waitForLog((l) => l.msg === `thread ${first}: uncaught exception in script '${join(APPS, 'throw-after.mjs')}' (request: "GET /throw-after.mjs"): ` +
      'thrown after the response; the thread takes no more requests and a new thread replaces it')
    assert.equal(line.level, ERROR)
    assert.equal(line.pool, 'www')
    assert.match((line.err as { stack?: string }).stack ?? '', /^Error: thrown after the response\n\s+at Timeout\._onTimeout \(.*throw-after\.mjs:\d+:\d+\)/)
    // a request sent now runs on the new thread, while the old one finishes its request
    const next = await thread(fpm)
    assert.notEqual(next, first)
    const other = await slow
    assert.equal(other.status, 200, 'the request running on the retired thread finished')
    assert.equal(other.body.toString(), first)
    await fpm.waitForLog((l) => new RegExp(`^thread ${first} retired after \\d+ requests \\(uncaught exception\\), \\d+\\.\\d{6} seconds from start$`).test(l.msg))
    assert.equal(await thread(fpm), next)
    assert.deepEqual(deaths(fpm), [], 'no thread died')
  })

  test('a throw from a timer the handler waits for: that request gets 500 at once; the thread is replaced, and terminated after the grace', async () => {
    const first = await thread(fpm)
    const t0 = Date.now()
    const res = await get(fpm, 'throw-before.mjs')
    assert.equal(res.status, 500)
    assert.equal(res.body.toString(), 'Internal Server Error\n')
    assert.ok(Date.now() - t0 < 2000)
    const line = await fpm.waitForLog((l) => l.msg.startsWith(`thread ${first}: uncaught exception in script '${join(APPS, 'throw-before.mjs')}' (request: "GET /throw-before.mjs"): `))
    assert.match(line.msg, /: Expected property name or '}' in JSON at position 2 .*; its request got 500, the thread takes no more requests and a new thread replaces it$/)
    assert.equal((line.err as { type?: string, message?: string }).message?.startsWith('Expected property name'), true)
    assert.notEqual(await thread(fpm), first)
    assert.ok(!fpm.logs.some((l) => /handler failed/.test(l.msg)), 'the abort of its request.signal is not a second error')
    // its handler waits forever: it does not keep the thread alive past request_terminate_timeout_grace
    await fpm.waitForLog((l) => l.msg === `thread ${first}: the handler that got 500 after an uncaught exception did not end within request_terminate_timeout_grace (300ms): terminating the thread`)
    await fpm.waitForLog((l) => new RegExp(`^thread ${first} retired after \\d+ requests \\(uncaught exception\\)`).test(l.msg))
    assert.ok(Date.now() - t0 >= 300)
    assert.deepEqual(deaths(fpm), [])
  })
})
