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

describe('Scheduler: how long a task held the thread', () => {
  test('from its start here to its result, not from when it was submitted; -1 for one that never ran', async () => {
    const serviceMs = new Map<number, number>()
    const finishers = new Map<number, () => void>()
    const scheduler = new Scheduler(1, async (t) => await new Promise<WorkerResult>((resolve) => { finishers.set(t.id, () => { resolve(OK) }) }),
      (id, _result, _failure, ms) => { serviceMs.set(id, ms) })
    scheduler.submit(task(1, -1))
    scheduler.submit(task(2, -1)) // waits behind task 1
    scheduler.submit(task(3, -1))
    assert.equal(scheduler.dropWaiting(3), true)
    await new Promise((resolve) => setTimeout(resolve, 150))
    finishers.get(1)?.()
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 20))
    finishers.get(2)?.()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(serviceMs.get(3), -1)
    assert.ok((serviceMs.get(1) ?? 0) >= 145, `task 1 ran ${serviceMs.get(1)} ms`)
    // Task 2 waited 150 ms behind task 1, then ran about 20 ms: only the 20 count.
    const two = serviceMs.get(2) ?? -1
    assert.ok(two >= 15 && two < 100, `task 2 held the thread ${two} ms`)
  })
})

describe('Scheduler: a task that ends synchronously', () => {
  test('is delivered before submit returns, its slot is free, and the waiting tasks run in order without nesting', () => {
    const delivered: number[] = []
    const depths: number[] = []
    let release = (): void => {}
    const scheduler = new Scheduler(1, (t) => {
      depths.push(new Error().stack?.split('\n').length ?? 0)
      if (t.id === 1) return new Promise<WorkerResult>((resolve) => { release = () => { resolve(OK) } })
      return OK
    }, (id) => { delivered.push(id) })
    scheduler.submit(task(2, -1))
    assert.deepEqual(delivered, [2], 'delivered within submit')
    assert.deepEqual([...scheduler.slots.ids], [0], 'and its slot is free')
    // Task 1 holds the slot; 2,000 synchronous tasks wait behind it.
    scheduler.submit(task(1, -1))
    for (let id = 3; id < 2003; id++) scheduler.submit(task(id, -1))
    release()
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      assert.equal(delivered.length, 2002)
      assert.deepEqual(delivered.slice(0, 4), [2, 1, 3, 4])
      assert.equal(delivered.at(-1), 2002)
      // Each ran from the loop that starts waiting tasks, not from inside the one before it.
      const last = depths.at(-1) ?? 0
      assert.ok(last <= (depths[2] ?? 0) + 2, `stack depth ${depths[2]} for the first waiting task, ${last} for the last`)
    })
  })

  test('a task that throws synchronously is delivered as a failure, and the next one runs', () => {
    const outcomes: Array<[number, unknown]> = []
    const scheduler = new Scheduler(1, (t) => {
      if (t.id === 1) throw new Error('boom')
      return OK
    }, (id, result, failure) => { outcomes.push([id, failure === null ? result : (failure as Error).message]) })
    scheduler.submit(task(1, -1))
    scheduler.submit(task(2, -1))
    assert.deepEqual(outcomes, [[1, 'boom'], [2, OK]])
  })
})
