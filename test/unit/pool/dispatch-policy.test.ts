// Which thread a request goes to (pool/dispatch-policy.ts): a free one, the least busy and oldest
// first; for a request that may wait on a busy thread (prefetch), one whose requests are all young
// and that finished one lately, and, while the pool's requests are quick, the busiest such thread
// up to a depth that grows with the requests in flight. The integration tests (dispatch.test.ts,
// terminate-timeout.test.ts) run the same policy on real threads.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { PREFETCH_MAX_AGE_MS, freeThread, isQuick, nextServiceMs, prefetchThread, type DispatchThread } from '../../../src/pool/dispatch-policy.ts'

const NOW = 10_000

interface T extends DispatchThread { readonly name: string }

/** A ready thread holding requests handed `agesMs` ago, which finished one `doneAgoMs` ago. */
function thread (name: string, agesMs: number[], fields: Partial<Omit<DispatchThread, 'jobs' | 'inflight'>> & { doneAgoMs?: number } = {}): T {
  return {
    name,
    ready: fields.ready ?? true,
    leaving: fields.leaving ?? null,
    gone: fields.gone ?? false,
    timingOut: fields.timingOut ?? 0,
    lastDoneMs: NOW - (fields.doneAgoMs ?? 1),
    inflight: agesMs.length,
    jobs: agesMs.map((age) => ({ req: { startedAtMs: NOW - age } }))
  }
}

const names = (t: T | null): string | null => t?.name ?? null

describe('dispatch policy', () => {
  test('a free thread: the least busy, the oldest among equals; never one that cannot take requests', () => {
    assert.equal(names(freeThread([thread('a', [1]), thread('b', []), thread('c', [])], 1)), 'b')
    assert.equal(names(freeThread([thread('a', [1]), thread('b', [1])], 1)), null, 'concurrency 1: both busy')
    assert.equal(names(freeThread([thread('a', [1, 1]), thread('b', [1])], 4)), 'b', 'concurrency 4: the least busy')
    for (const blocked of [{ ready: false }, { leaving: 'recycle' }, { gone: true }, { timingOut: 1 }]) {
      assert.equal(names(freeThread([thread('x', [], blocked), thread('y', [1])], 1)), null, JSON.stringify(blocked))
    }
  })

  test('prefetch: only onto a thread whose requests are young and that finished one lately; the least busy', () => {
    const args = [1, 2, false, NOW] as const
    assert.equal(names(prefetchThread([thread('a', [1, 1]), thread('b', [1])], ...args)), 'b')
    assert.equal(names(prefetchThread([thread('old', [PREFETCH_MAX_AGE_MS + 1])], ...args)), null, 'a request there is not young')
    assert.equal(names(prefetchThread([thread('idle', [1], { doneAgoMs: 1000 })], ...args)), null, 'it has not finished one lately')
    assert.equal(names(prefetchThread([thread('fresh', [1], { doneAgoMs: Infinity })], ...args)), null, 'a fresh thread has shown nothing')
    assert.equal(names(prefetchThread([thread('full', [1, 1, 1, 1, 1])], ...args)), null, 'concurrency 1 + 4 held already')
    assert.equal(names(prefetchThread([thread('leaving', [1], { leaving: 'retire' })], ...args)), null)
  })

  test('quick requests: the busiest thread that has one, as deep as the requests in flight per CPU', () => {
    const cpus = availableParallelism()
    assert.equal(names(prefetchThread([thread('a', [1]), thread('b', [1, 1]), thread('idle', [])], 1, 3, true, NOW)), 'b')
    assert.equal(names(prefetchThread([thread('idle', [])], 1, 1, true, NOW)), null, 'never wakes an idle thread')
    // 5 held: at depth 4 (few requests in flight) full; at 64 requests the depth is max(4, 64 / CPUs), at most 32
    const five = [thread('busy', [1, 1, 1, 1, 1])]
    assert.equal(names(prefetchThread(five, 1, 8, true, NOW)), cpus * 4 >= 8 ? null : 'busy')
    assert.equal(names(prefetchThread(five, 1, 64, true, NOW)), 1 + Math.min(32, Math.max(4, Math.ceil(64 / cpus))) > 5 ? 'busy' : null)
    const deep = [thread('deep', Array.from({ length: 33 }, () => 1))]
    assert.equal(names(prefetchThread(deep, 1, 10_000, true, NOW)), null, 'never beyond concurrency + 32')
  })

  test('service time: an average of recent requests, each counted up to a cap; quick below 0.25 ms', () => {
    assert.equal(nextServiceMs(Infinity, 0.1), 0.1, 'the first sample is the average')
    let ms = 0.1
    ms = nextServiceMs(ms, 1000) // a GC pause or one slow request
    assert.ok(isQuick(ms), `one slow request does not flip the choice (${ms})`)
    for (let i = 0; i < 50; i++) ms = nextServiceMs(ms, 5)
    assert.ok(!isQuick(ms), `a run of slow requests does (${ms})`)
    for (let i = 0; i < 300; i++) ms = nextServiceMs(ms, 0.05)
    assert.ok(isQuick(ms), `and quick ones bring it back (${ms})`)
  })
})
