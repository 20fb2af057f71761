// The pool's request queue (src/pool/request-queue.ts, pool.ts): requests wait for a free thread
// up to request.queue_max and request.queue_timeout; beyond them the client gets 503 with
// Retry-After at once, the event is logged once per episode, and the connection stays usable.
// A request whose client goes away while it waits never runs.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import type { FcgiResponse } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')

const config = (extra: string): string => `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = {{ROOT}}
env[MARK] = {{DIR}}/marks
${extra}
`

const params = (script: string, query: string): Record<string, string> =>
  buildCgiParams({ uri: `/${script}?${query}`, scriptFilename: join(APPS, script) })

async function get (fpm: FpmHandle, script: string, query: string): Promise<FcgiResponse & { ms: number }> {
  const t0 = Date.now()
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    const res = await conn.request({ params: params(script, query) }, { keepConn: false })
    return { ...res, ms: Date.now() - t0 }
  } finally {
    await conn.close()
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const header = (res: FcgiResponse, name: string): string | undefined => res.headers.find(([n]) => n.toLowerCase() === name)?.[1]

describe('request.queue_max', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config('request.queue_max = 2\nrequest.queue_timeout = 20s'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('two requests wait behind the busy thread; the third and fourth get 503 + Retry-After at once; all waiting ones are served', async () => {
    await get(fpm, 'quick.mjs', '') // the thread is up
    const busy = get(fpm, 'hold.mjs', 'ms=1000')
    await sleep(100)
    const waiting = [get(fpm, 'hold.mjs', 'ms=1'), get(fpm, 'hold.mjs', 'ms=1')]
    await sleep(100)
    const refused = await Promise.all([get(fpm, 'quick.mjs', ''), get(fpm, 'quick.mjs', '')])
    for (const r of refused) {
      assert.equal(r.status, 503)
      assert.equal(header(r, 'retry-after'), '1')
      assert.match(r.body.toString(), /Service Unavailable/)
      assert.ok(r.ms < 500, `a refusal took ${r.ms} ms: it must not wait`)
    }
    assert.equal((await busy).status, 200)
    for (const r of await Promise.all(waiting)) assert.equal(r.status, 200)
    // the queue has room again
    assert.equal((await get(fpm, 'quick.mjs', '')).status, 200)
    const warnings = fpm.logs.filter((l) => /request queue is full/.test(l.msg) && l.level === 40)
    assert.equal(warnings.length, 1, 'one warning per episode')
    assert.equal(warnings[0]?.msg, 'request queue is full (request.queue_max = 2): requests get 503 until it has room')
    assert.equal(warnings[0]?.level, 40)
  })

  test('the connection that got a 503 stays usable (FCGI_KEEP_CONN)', async () => {
    const busy = get(fpm, 'hold.mjs', 'ms=600')
    await sleep(100)
    const waiting = [get(fpm, 'hold.mjs', 'ms=1'), get(fpm, 'hold.mjs', 'ms=1')]
    await sleep(100)
    const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
    try {
      assert.equal((await conn.request({ params: params('quick.mjs', '') })).status, 503)
      await busy
      await Promise.all(waiting)
      assert.equal((await conn.request({ params: params('quick.mjs', '') })).status, 200)
    } finally {
      await conn.close()
    }
  })
})

describe('request.queue_timeout', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config('request.queue_timeout = 300ms'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('a request that waits longer than the timeout gets 503 + Retry-After, after about the timeout', async () => {
    await get(fpm, 'quick.mjs', '')
    const busy = get(fpm, 'hold.mjs', 'ms=1500')
    await sleep(100)
    const late = await Promise.all([get(fpm, 'mark.mjs', 'id=late1'), get(fpm, 'mark.mjs', 'id=late2')])
    for (const r of late) {
      assert.equal(r.status, 503)
      assert.equal(header(r, 'retry-after'), '1')
      assert.ok(r.ms >= 250 && r.ms < 1200, `refused after ${r.ms} ms, expected about 300`)
    }
    assert.equal((await busy).status, 200)
    assert.ok(!existsSync(join(fpm.dir, 'marks')), 'the refused requests never ran')
    const warnings = fpm.logs.filter((l) => /request\.queue_timeout/.test(l.msg) && l.level === 40)
    assert.equal(warnings.length, 1, 'one warning per episode')
    assert.equal(warnings[0]?.msg, 'a request waited request.queue_timeout (300ms) for a free thread: 503; consider raising pm.max_children')
  })
})

describe('request.queue_max = 0', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config('request.queue_max = 0'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('no request waits: 503 whenever the thread is busy, 200 when it is free', async () => {
    await get(fpm, 'quick.mjs', '')
    const busy = get(fpm, 'hold.mjs', 'ms=500')
    await sleep(100)
    const r = await get(fpm, 'quick.mjs', '')
    assert.equal(r.status, 503)
    assert.ok(r.ms < 400)
    assert.equal((await busy).status, 200)
    assert.equal((await get(fpm, 'quick.mjs', '')).status, 200)
  })
})

describe('a waiting request whose client goes away', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config(''), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('FCGI_ABORT_REQUEST takes it out of the queue: it never runs; the ones behind it do', async () => {
    await get(fpm, 'quick.mjs', '')
    const busy = get(fpm, 'hold.mjs', 'ms=600')
    await sleep(100)
    const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
    const abort = new AbortController()
    const gone = conn.request({ params: params('mark.mjs', 'id=gone') }, { signal: abort.signal })
    const stays = get(fpm, 'mark.mjs', 'id=stays')
    await sleep(100)
    abort.abort()
    await assert.rejects(gone)
    assert.equal((await busy).status, 200)
    assert.equal((await stays).status, 200)
    await conn.close()
    assert.deepEqual(readFileSync(join(fpm.dir, 'marks'), 'utf8').trim().split('\n'), ['stays'])
  })
})
