// src/worker/scheduler.ts in this thread: one slot, a task that waits behind a running one, and the
// claim words that the main thread and the thread race for (pool.ts #takeBack).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { WorkerResult, WorkerTask } from '../../../src/common/messages.ts'
import { Scheduler } from '../../../src/worker/scheduler.ts'

const OK: WorkerResult = { response: { head: '\r\n', body: 'ok' }, error: null }

function task (id: number, claim: number): WorkerTask {
  return { id, script: '/app.mjs', params: '', body: null, bodyStreaming: false, isHead: false, claim }
}

/** A scheduler of one slot whose tasks end when the test says so; what it delivers, in order. */
function oneSlot (): { scheduler: Scheduler, delivered: Array<[number, WorkerResult | null]>, finish: () => void } {
  const delivered: Array<[number, WorkerResult | null]> = []
  let finish = (): void => {}
  const scheduler = new Scheduler(1, async () => await new Promise<WorkerResult>((resolve) => { finish = () => { resolve(OK) } }),
    (id, result) => { delivered.push([id, result]) })
  return { scheduler, delivered, finish: () => { finish() } }
}

describe('Scheduler: a task dropped while it waits (ABORT)', () => {
  test('is answered as not run, and its claim word is free again', () => {
    const { scheduler, delivered } = oneSlot()
    const claims = scheduler.slots.claims
    Atomics.store(claims, 0, 1)
    Atomics.store(claims, 1, 2)
    scheduler.submit(task(1, 0))
    scheduler.submit(task(2, 1))
    assert.equal(Atomics.load(claims, 0), 0, 'the running task took its word')
    assert.equal(scheduler.dropWaiting(2), true)
    assert.deepEqual(delivered, [[2, { response: null, error: null }]])
    assert.equal(Atomics.load(claims, 1), 0, 'the dropped task\'s word can hold a later task')
  })

  test('taken back by the main thread first: dropped without an answer', () => {
    const { scheduler, delivered } = oneSlot()
    const claims = scheduler.slots.claims
    Atomics.store(claims, 1, 2)
    scheduler.submit(task(1, -1))
    scheduler.submit(task(2, 1))
    assert.equal(Atomics.compareExchange(claims, 1, 2, 0), 2) // the main thread's take-back
    assert.equal(scheduler.dropWaiting(2), true)
    assert.deepEqual(delivered, [])
  })

  test('a waiting task whose word the main thread took never runs; the next one does', async () => {
    const { scheduler, delivered, finish } = oneSlot()
    const claims = scheduler.slots.claims
    Atomics.store(claims, 1, 2)
    Atomics.store(claims, 2, 3)
    scheduler.submit(task(1, -1))
    scheduler.submit(task(2, 1))
    scheduler.submit(task(3, 2))
    Atomics.compareExchange(claims, 1, 2, 0)
    finish()
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(delivered.map(([id]) => id), [1])
    assert.deepEqual([...scheduler.slots.ids], [3], 'task 3 runs, task 2 was skipped')
  })
})
