// request_terminate_timeout (src/pool/pool.ts): the client gets 504 at once, request.signal is
// aborted, a handler that ends within request_terminate_timeout_grace keeps its thread, one that
// does not (a busy loop, an ignored signal) has its thread terminated and replaced; the connection
// stays usable, requests waiting behind it run elsewhere, and the event is logged with pool,
// script, URI and elapsed time. Real server processes, real threads.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import type { FcgiResponse } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'
import { connectRawBatch } from '../helpers/fcgi-requests.ts'

const TIMEOUT_APPS = join(REPO, 'test/fixtures/timeout-apps')

const timeoutConfig = (lines: string[]): string => `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
root = {{ROOT}}
env[FIFO] = {{DIR}}/fifo
${lines.join('\n')}
`

async function send (conn: FcgiConnection, script: string, query = ''): Promise<FcgiResponse> {
  const uri = `/${script}${query === '' ? '' : `?${query}`}`
  return await conn.request({ params: buildCgiParams({ uri, scriptFilename: join(TIMEOUT_APPS, script) }) })
}

/** One request on a connection of its own. */
async function get (fpm: FpmHandle, script: string, query = ''): Promise<FcgiResponse> {
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    return await send(conn, script, query)
  } finally {
    await conn.close()
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const WARN = 40
const ERROR = 50
const timedOutLine = (script: string) => (l: LogLine): boolean => l.level === WARN && /execution timed out/.test(l.msg) && l.script === join(TIMEOUT_APPS, script)
const exitedLine = (thread: number) => (l: LogLine): boolean => l.msg.startsWith(`thread ${thread} exited on terminate() (request_terminate_timeout)`)

describe('a busy loop: 504, the thread terminated and replaced, the connection still usable', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 2', 'request_terminate_timeout = 1s', 'request_terminate_timeout_grace = 300ms']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('for(;;){} gets 504 within the bound; another thread serves meanwhile; a fresh thread takes its place', async () => {
    const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
    try {
      const t0 = Date.now()
      const looping = send(conn, 'loop.mjs', 'spin=1')
      await sleep(150)
      // the other thread is unaffected
      const quick = await get(fpm, 'whoami.mjs')
      assert.equal(quick.status, 200)
      const res = await looping
      const elapsed = Date.now() - t0
      assert.equal(res.status, 504)
      assert.equal(res.body.toString(), 'Gateway Timeout\n')
      assert.equal(res.appStatus, 0)
      assert.ok(elapsed >= 950 && elapsed < 5000, `504 after ${elapsed} ms`)

      const line = await fpm.waitForLog(timedOutLine('loop.mjs'))
      assert.equal(line.pool, 'www')
      assert.equal(line.uri, '/loop.mjs?spin=1')
      assert.equal(line.method, 'GET')
      assert.ok(typeof line.elapsedMs === 'number' && line.elapsedMs >= 1000 && line.elapsedMs < 2500, `elapsedMs ${String(line.elapsedMs)}`)
      const killed = line.thread as number
      assert.match(line.msg, new RegExp(`^thread ${killed}, script '.*loop\\.mjs' \\(request: "GET /loop\\.mjs\\?spin=1"\\) execution timed out \\(1\\.\\d{6} sec\\), aborting its request\\.signal, terminating in 300ms unless it ends$`))
      assert.notEqual(String(killed), quick.body.toString(), 'the quick request ran on the other thread')

      // the same keep-alive connection serves the next request, on another thread
      const next = await send(conn, 'whoami.mjs')
      assert.equal(next.status, 200)
      assert.notEqual(next.body.toString(), String(killed))

      await fpm.waitForLog((l) => l.level === WARN && l.msg.startsWith(`thread ${killed}, script`) && /still running 300ms after its request\.signal was aborted \(request_terminate_timeout_grace\), terminating$/.test(l.msg))
      await fpm.waitForLog(exitedLine(killed))
      // capacity is back to two threads, neither of them the terminated one
      await sleep(100)
      const pair = await Promise.all([get(fpm, 'whoami.mjs', 'ms=300'), get(fpm, 'whoami.mjs', 'ms=300')])
      const threads = new Set(pair.map((r) => r.body.toString()))
      assert.equal(threads.size, 2, `both ran on ${[...threads].join()}`)
      assert.ok(!threads.has(String(killed)))
      assert.ok(!fpm.logs.some((l) => /worker thread ended while serving/.test(l.msg)), 'no 502-style error for the timed-out request')
    } finally {
      await conn.close()
    }
  })
})

describe('a handler that listens to request.signal', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 1', 'request_terminate_timeout = 500ms']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('ends within the grace: the client got 504, the thread is kept', async () => {
    const before = (await get(fpm, 'whoami.mjs')).body.toString()
    const t0 = Date.now()
    const res = await get(fpm, 'cooperative.mjs')
    assert.equal(res.status, 504)
    assert.ok(Date.now() - t0 < 3000)
    const kept = await fpm.waitForLog((l) => /ended \d+ ms after its request\.signal was aborted: the thread is kept$/.test(l.msg))
    assert.equal(String(kept.thread), before)
    const afterwards = (await get(fpm, 'whoami.mjs')).body.toString()
    assert.equal(afterwards, before, 'same thread')
    await sleep(1200) // past the default grace (1s): nothing is terminated
    assert.ok(!fpm.logs.some((l) => /terminat/.test(l.msg) && !/execution timed out/.test(l.msg)), fpm.rawStderr())
  })

  test('a response already under way is cut short (END_REQUEST appStatus 1), the thread is kept', async () => {
    const before = (await get(fpm, 'whoami.mjs')).body.toString()
    const res = await get(fpm, 'head-then-hang.mjs')
    assert.equal(res.status, 200)
    assert.equal(res.body.toString(), 'partial')
    assert.equal(res.appStatus, 1)
    // the stream's sender stops at the abort: the task settles, the thread stays
    await fpm.waitForLog((l) => /head-then-hang\.mjs.*the thread is kept$/.test(l.msg))
    assert.equal((await get(fpm, 'whoami.mjs')).body.toString(), before)
  })
})

describe('a handler that ignores request.signal', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 1', 'request_terminate_timeout = 500ms', 'request_terminate_timeout_grace = 200ms']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('an endless await is terminated after the grace and its thread replaced', async () => {
    const before = (await get(fpm, 'whoami.mjs')).body.toString()
    const res = await get(fpm, 'await-forever.mjs')
    assert.equal(res.status, 504)
    await fpm.waitForLog(exitedLine(Number(before)))
    const afterwards = await get(fpm, 'whoami.mjs')
    assert.equal(afterwards.status, 200)
    assert.notEqual(afterwards.body.toString(), before, 'a fresh thread')
  })
})

describe('requests prefetched behind a request that times out', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 1', 'request_terminate_timeout = 1s', 'request_terminate_timeout_grace = 0']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('grace 0: terminated at once; the two quick requests sent with it run on the new thread', async () => {
    const batch = await connectRawBatch(fpm.port, TIMEOUT_APPS)
    // a request just before makes the thread one that finished recently: the pool prefetches onto it
    const first = (await get(fpm, 'whoami.mjs')).body.toString()
    batch.send([['loop.mjs', ''], ['whoami.mjs', ''], ['whoami.mjs', '']])
    const responses = await batch.responses(8000)
    batch.close()
    assert.equal(responses[0]?.status, 504)
    for (const r of responses.slice(1)) {
      assert.equal(r.status, 200)
      assert.notEqual(r.body.toString(), first, 'on the new thread')
    }
    const line = await fpm.waitForLog(timedOutLine('loop.mjs'))
    assert.match(line.msg, /execution timed out \(1\.\d{6} sec\), terminating$/)
    // Handed to the thread with the loop, they came back to the pool: taken back once the loop had
    // run PREFETCH_MAX_AGE_MS (pool.ts #takeBack), or dispatched again when the thread ended.
    assert.ok(fpm.logs.some((l) => /dispatched again|taken back to the queue/.test(l.msg)), `the quick requests were waiting on the terminated thread; log:\n${fpm.rawStderr()}`)
  })
})

describe('a request that ended just before a busy loop started on its thread', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 1', 'request_terminate_timeout = 1s', 'request_terminate_timeout_grace = 0', 'env[MARK] = {{DIR}}/runs']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('its response is sent and it is not run again when the thread is terminated', async () => {
    const batch = await connectRawBatch(fpm.port, TIMEOUT_APPS)
    // Both modules loaded on the one thread first (a first run awaits its import, which lets the
    // result before it leave), and the thread is then one that finished recently: the loop is
    // handed to it behind the quick request, and starts as soon as that one ends.
    assert.equal((await get(fpm, 'spin-if-asked.mjs')).status, 200)
    assert.equal((await get(fpm, 'mark.mjs', 'id=warm')).status, 200)
    batch.send([['mark.mjs', 'id=before-loop'], ['spin-if-asked.mjs', 'spin']])
    const responses = await batch.responses(8000)
    batch.close()
    assert.equal(responses[0]?.status, 200)
    assert.match(responses[0]?.body.toString() ?? '', /^ran before-loop on \d+$/)
    assert.equal(responses[1]?.status, 504)
    await fpm.waitForLog(timedOutLine('spin-if-asked.mjs'))
    // The new thread serves, and the quick request ran once only (a result still on the thread
    // when it was terminated made the pool take it for one that never started, and run it again).
    assert.equal((await get(fpm, 'mark.mjs', 'id=after')).status, 200)
    assert.deepEqual(readFileSync(join(fpm.dir, 'runs'), 'utf8').split('\n').filter(Boolean), ['warm', 'before-loop', 'after'])
  })
})

describe('pm.thread_concurrency = 2', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(timeoutConfig(['pm.max_children = 1', 'pm.thread_concurrency = 2', 'request_terminate_timeout = 1s', 'request_terminate_timeout_grace = 0']), { root: TIMEOUT_APPS })
  })
  after(async () => { await fpm.stop() })

  test('the other request running on the terminated thread ends with it (502)', async () => {
    const stuck = get(fpm, 'await-forever.mjs')
    await sleep(400)
    const other = get(fpm, 'whoami.mjs', 'ms=3000')
    const [a, b] = await Promise.all([stuck, other])
    assert.equal(a.status, 504)
    assert.equal(b.status, 502)
    await fpm.waitForLog((l) => l.level === ERROR && /was terminated because another request on it exceeded request_terminate_timeout/.test(String((l.err as { message?: string } | undefined)?.message ?? l.msg)))
    assert.equal((await get(fpm, 'whoami.mjs')).status, 200)
  })
})

describe('request_terminate_timeout_track_finished', () => {
  const lines = (track: 'yes' | 'no'): string[] => ['pm.max_children = 1', 'request_terminate_timeout = 500ms', 'request_terminate_timeout_grace = 200ms',
    `request_terminate_timeout_track_finished = ${track}`]

  test('no (the default): work after ctx.finishRequest() is not timed', async () => {
    const fpm = await startFpm(timeoutConfig(lines('no')), { root: TIMEOUT_APPS })
    try {
      const res = await get(fpm, 'finish-loop.mjs')
      assert.equal(res.status, 200)
      assert.equal(res.body.toString(), 'ok')
      await sleep(1200) // more than twice the timeout, while the handler goes on after its response
      assert.ok(!fpm.logs.some((l) => /timed out|terminat/.test(l.msg)), fpm.rawStderr())
    } finally {
      await fpm.stop()
    }
  })

  test('yes: it is, and the thread is terminated and replaced', async () => {
    const fpm = await startFpm(timeoutConfig(lines('yes')), { root: TIMEOUT_APPS })
    try {
      const before = (await get(fpm, 'whoami.mjs')).body.toString()
      const res = await get(fpm, 'finish-loop.mjs')
      assert.equal(res.status, 200)
      assert.equal(res.body.toString(), 'ok')
      const line = await fpm.waitForLog(timedOutLine('finish-loop.mjs'))
      assert.equal(String(line.thread), before)
      await fpm.waitForLog(exitedLine(Number(before)))
      const afterwards = await get(fpm, 'whoami.mjs')
      assert.equal(afterwards.status, 200)
      assert.notEqual(afterwards.body.toString(), before)
    } finally {
      await fpm.stop()
    }
  })
})
