// The figures pm.accept = threads threads count for the status page (common/accept-counters.ts):
// active threads and the most at once, and a thread that ends while busy taken back exactly once.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BUSY, createPoolWords, createThreadCounts, maxActiveThreads, threadBusy, threadIdle } from '../../../src/common/accept-counters.ts'

test('active threads: the most at once is kept; idle twice (the thread, then the main thread at its exit) counts once', () => {
  const active = createPoolWords()
  const [a, b, c] = [createThreadCounts(), createThreadCounts(), createThreadCounts()]
  threadBusy(active, a)
  threadBusy(active, b)
  threadIdle(active, a)
  threadBusy(active, c)
  threadBusy(active, a)
  assert.equal(maxActiveThreads(active), 3)
  threadIdle(active, b)
  threadIdle(active, b) // b ended busy-free: the main thread's call at its exit changes nothing
  assert.equal(b[BUSY], 0)
  threadIdle(active, a)
  threadIdle(active, c)
  assert.equal(Atomics.load(active, 0), 0, 'none active')
  assert.equal(maxActiveThreads(active), 3)
})
