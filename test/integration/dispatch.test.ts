// How requests reach threads: a thread may already hold the next request while it runs one
// (prefetch, src/pool/pool.ts + src/worker/scheduler.ts). These tests pin the guarantees that must
// survive it: a request waiting in a thread that dies runs elsewhere, exactly once; a slow request
// does not collect a queue behind it while another thread is free; requests handed to a thread
// whose request turns out slow are taken back.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { connectRawBatch, getScript } from '../helpers/fcgi-requests.ts'
import { request } from '../helpers/status-pages.ts'
import { runLoad } from '../../src/bench/load-generator.ts'

const APPS = join(REPO, 'test/fixtures/dispatch-apps')

const config = (threads: number): string => `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = ${threads}
root = {{ROOT}}
env[MARK] = {{DIR}}/marks
`

async function get (fpm: FpmHandle, script: string, query: string): Promise<{ status: number, body: string }> {
  return await getScript(fpm.port, APPS, script, query)
}

describe('one thread: requests waiting behind one whose thread dies', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config(1), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('the dying request gets 502; the ones queued behind it run on the replacement thread, exactly once', async () => {
    // Five requests in ONE write on one connection: they reach the pool in the same tick, so the
    // followers are handed to the only thread (prefetched) before the first one has even started.
    const batch = await connectRawBatch(fpm.port, APPS)
    // a first request makes sure the thread is up and has opened its channel (until then the pool
    // does not prefetch onto it)
    assert.equal((await get(fpm, 'count.mjs', 'id=warm-up')).status, 200)
    batch.send([['die-soon.mjs', ''], ...[1, 2, 3, 4].map((i): [string, string] => ['count.mjs', `id=${i}`])])
    const responses = await batch.responses(15_000)
    batch.close()
    assert.equal(responses[0]?.status, 502)
    for (let i = 1; i <= 4; i++) {
      assert.equal(responses[i]?.status, 200, `follower ${i}`)
      assert.match(responses[i]?.body.toString() ?? '', new RegExp(`^ran ${i} on `))
    }
    const runs = readFileSync(join(fpm.dir, 'marks'), 'utf8').trim().split('\n').sort()
    assert.deepEqual(runs, ['1', '2', '3', '4', 'warm-up'], 'each follower ran exactly once')
    // Held by the dying thread, they came back to the pool either when it died (dispatched again)
    // or before, once the request ahead of them had run PREFETCH_MAX_AGE_MS (taken back).
    assert.ok(fpm.logs.some((l) => /dispatched again|taken back to the queue/.test(l.msg)), `some follower was waiting on the dying thread; log:\n${fpm.rawStderr()}`)
  })
})

describe('two threads: a slow request does not hold others back', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config(2), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('while one thread is busy for 1.5 s, 40 quick requests are all served by the other, none waits for the slow one', async () => {
    const slowStarted = Date.now()
    const slow = get(fpm, 'slow.mjs', 'ms=1500')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const quick: Array<{ ms: number, body: string }> = []
    for (let i = 0; i < 20; i++) {
      // two at a time, so the free thread is sometimes busy and prefetch is tempting
      const pair = await Promise.all([0, 1].map(async (k) => {
        const t0 = Date.now()
        const r = await get(fpm, 'count.mjs', `id=${i * 2 + k}`)
        return { ms: Date.now() - t0, body: r.body }
      }))
      quick.push(...pair)
    }
    const slowRes = await slow
    assert.equal(slowRes.status, 200)
    assert.ok(Date.now() - slowStarted >= 1500)
    const slowest = Math.max(...quick.map((q) => q.ms))
    assert.ok(slowest < 1000, `a quick request waited ${slowest} ms (behind the slow one?)`)
    const threads = new Set(quick.map((q) => q.body.split(' on ')[1]))
    assert.equal(threads.size, 1, `quick requests ran on ${[...threads].join(', ')}: only the free thread should serve them`)
  })
})

describe('one thread: requests handed to it while it starts a slow one are taken back', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config(1), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('they leave its scheduler for the pool\'s queue once the slow one has run a few ms, and each runs once, after it', async () => {
    // The thread has just finished a request, so it counts as churning through quick ones: the
    // requests that arrive with the slow one are handed to it at once (prefetch), behind it.
    assert.equal((await get(fpm, 'count.mjs', 'id=warm-up')).status, 200)
    const batch = await connectRawBatch(fpm.port, APPS)
    batch.send([['slow.mjs', 'ms=600'], ...[1, 2, 3].map((i): [string, string] => ['count.mjs', `id=${i}`])])
    const responses = await batch.responses(15_000)
    batch.close()
    assert.equal(responses[0]?.status, 200)
    for (let i = 1; i <= 3; i++) assert.match(responses[i]?.body.toString() ?? '', new RegExp(`^ran ${i} on `), `follower ${i}`)
    const runs = readFileSync(join(fpm.dir, 'marks'), 'utf8').trim().split('\n').sort()
    assert.deepEqual(runs, ['1', '2', '3', 'warm-up'], 'each follower ran exactly once')
    assert.ok(fpm.logs.some((l) => /taken back to the queue/.test(l.msg)), `no request was taken back; log:\n${fpm.rawStderr()}`)
  })
})

describe('pm.thread_concurrency', () => {
  const withConcurrency = (n: number): string => `${config(1)}pm.thread_concurrency = ${n}\n`

  test('1 (the default): one thread runs one awaiting request at a time', async () => {
    const fpm = await startFpm(config(1), { root: APPS })
    try {
      const t0 = Date.now()
      const results = await Promise.all([1, 2, 3].map(async () => await get(fpm, 'wait.mjs', 'ms=250')))
      const elapsed = Date.now() - t0
      assert.ok(results.every((r) => r.status === 200))
      assert.ok(elapsed >= 700, `3 x 250 ms on one thread took ${elapsed} ms: they overlapped`)
    } finally {
      await fpm.stop()
    }
  })

  test('4: one thread runs four awaiting requests at once', async () => {
    const fpm = await startFpm(withConcurrency(4), { root: APPS })
    try {
      await get(fpm, 'wait.mjs', 'ms=1') // the thread is up
      const t0 = Date.now()
      const results = await Promise.all([1, 2, 3, 4].map(async () => await get(fpm, 'wait.mjs', 'ms=400')))
      const elapsed = Date.now() - t0
      assert.ok(results.every((r) => r.status === 200))
      assert.equal(new Set(results.map((r) => r.body)).size, 1, 'all on the one thread')
      assert.ok(elapsed < 1200, `4 x 400 ms took ${elapsed} ms: they did not overlap`)
    } finally {
      await fpm.stop()
    }
  })
})

// Quick requests go to a thread already busy with quick ones, up to about in-flight / CPUs each, so
// that about one thread per CPU does the work instead of every thread waking for a few requests.
describe('eight threads, sustained quick requests from 32 connections', () => {
  const THREADS = 8
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(`${config(THREADS)}pm.status_path = /status\n`, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('about one thread per CPU serves them', async () => {
    const perThread = async (): Promise<Map<number, number>> => {
      const res = await request(fpm.port, '/status?json&full', { documentRoot: APPS })
      const page = JSON.parse(res.body.toString()) as { processes: Array<{ pid: number, requests: number }> }
      return new Map(page.processes.map((p) => [p.pid, p.requests]))
    }
    const load = { address: `127.0.0.1:${fpm.port}`, uri: '/hello.mjs', root: APPS, connections: 32, expectBody: 'hello' }
    // Warmed up first: the pool concentrates once it has seen that its requests are quick.
    assert.equal((await runLoad({ ...load, duration: 1, warmup: 0 })).errors.total, 0)
    const hot = Math.min(availableParallelism(), THREADS)
    // A stall of the machine (a shared VM) can make the pool's requests look slow for a while, and the
    // pool then spreads them, as it should: the best of three measures (one seen at 63% in CI).
    const shares: string[] = []
    let best = 0
    for (let attempt = 0; attempt < 3 && best < 0.7; attempt++) {
      const before = await perThread()
      assert.equal((await runLoad({ ...load, duration: 1.5, warmup: 0 })).errors.total, 0)
      const after = await perThread()
      assert.equal(after.size, THREADS)
      const served = [...after].map(([id, n]) => n - (before.get(id) ?? 0)).sort((a, b) => b - a)
      const total = served.reduce((a, b) => a + b, 0)
      const share = served.slice(0, hot).reduce((a, b) => a + b, 0) / total
      shares.push(`${(share * 100).toFixed(0)}% (${served.join(' ')})`)
      best = Math.max(best, share)
    }
    // Measured here (2 CPUs): 0.95-1; 0.42-0.44 when a thread took at most 5 at a time.
    assert.ok(best >= 0.7, `the busiest ${hot} threads served ${shares.join(', ')}`)
  })

  test('a request that turns slow (1 s busy loop) under that load: the requests piled behind it are taken back', async () => {
    const load = runLoad({ address: `127.0.0.1:${fpm.port}`, uri: '/hello.mjs', root: APPS, connections: 32, duration: 2, warmup: 0.5, expectBody: 'hello' })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const slow = await get(fpm, 'slow.mjs', 'ms=1000')
    const res = await load
    assert.equal(slow.status, 200)
    assert.equal(res.errors.total, 0)
    // Without take-back, up to 32 requests would wait the whole second behind it.
    assert.ok(res.latency.max < 500, `slowest quick request: ${res.latency.max} ms`)
  })
})
