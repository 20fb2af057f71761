// pm.max_requests under continuous load (php-fpm.md §8.1; node-runtime.md §8 recycle.mjs): a
// thread that has served its share (pm.max_requests plus its pm.max_requests_jitter) is replaced,
// only when idle, never in the middle of a request; its replacement is started ahead, so the pool
// never counts fewer than pm.max_children threads. The FastCGI connections are the
// server's, not the threads': requests on kept-alive connections never fail because of a recycle
// (php-fpm's 502-on-recycle with keep-alive does not exist here).

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')
const THREADS = 4
const MAX_REQUESTS = 50
const JITTER = 10
const CONNECTIONS = 8
const REQUESTS = 3000

const CONFIG = `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = ${THREADS}
pm.max_requests = ${MAX_REQUESTS}
pm.max_requests_jitter = ${JITTER}
root = {{ROOT}}
`

describe('pm.max_requests under continuous load', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test(`${REQUESTS} requests on ${CONNECTIONS} kept-alive connections, threads recycled every ${MAX_REQUESTS}-${MAX_REQUESTS + JITTER} requests: none fails`, { timeout: 60_000 }, async () => {
    const params = buildCgiParams({ uri: '/quick.mjs', scriptFilename: join(APPS, 'quick.mjs') })
    const conns = await Promise.all(Array.from({ length: CONNECTIONS }, async () => await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)))
    let sent = 0
    const statuses = new Map<number, number>()
    const failures: string[] = []
    const threadIds = new Set<string>()
    await Promise.all(conns.map(async (conn) => {
      while (sent < REQUESTS) {
        sent++
        try {
          const res = await conn.request({ params }, { timeoutMs: 10_000 })
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
          threadIds.add(res.body.toString())
        } catch (err) {
          failures.push((err as Error).message)
        }
      }
    }))
    await Promise.all(conns.map(async (c) => { await c.close() }))
    assert.deepEqual(failures, [])
    assert.deepEqual([...statuses], [[200, REQUESTS]])

    // let the last recycles finish
    await new Promise((resolve) => setTimeout(resolve, 300))
    const recycled = fpm.logs.filter((l) => /^thread \d+ retired after \d+ requests \(pm\.max_requests\)/.test(l.msg))
    const served = recycled.map((l) => l.requests as number)
    // Each thread serves exactly its share: pm.max_requests plus its jitter.
    for (const n of served) assert.ok(n >= MAX_REQUESTS && n <= MAX_REQUESTS + JITTER, `a thread retired after ${n} requests`)
    // about REQUESTS / 55 recycles (the threads alive at the end have not reached their share)
    assert.ok(recycled.length >= REQUESTS / (MAX_REQUESTS + JITTER) - THREADS && recycled.length <= REQUESTS / MAX_REQUESTS,
      `${recycled.length} recycles for ${REQUESTS} requests (served: ${served.join(' ')})`)
    assert.ok(threadIds.size > THREADS * 4, `requests ran on ${threadIds.size} threads`)
    // never fewer than pm.max_children threads: at each recycle, and at each heartbeat
    for (const l of recycled) assert.ok((l.threads as number) >= THREADS, `${l.threads as number} threads at a recycle`)
    const ticks = fpm.logs.filter((l) => l.msg.startsWith('threads: '))
    for (const l of ticks) assert.ok((l.threads as number) >= THREADS, l.msg)
    assert.equal(fpm.logs.filter((l) => l.level >= 40).length, 0, 'no warning, no error')
    // the jitter spreads the limits
    assert.ok(new Set(served).size > 1, `every thread retired after ${served[0] ?? '?'} requests`)
  })
})
