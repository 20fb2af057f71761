// What the status page's `full` view reads of a thread (pool/thread-snapshot.ts): its state, the
// request it describes (the one running longest, never one waiting in its scheduler; else the last
// one it finished), the start times from the shared execution slots, and the measured heap.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { describeThread, lastRequestOf } from '../../../src/pool/thread-snapshot.ts'

const origin = performance.timeOrigin

function job (id: number, uri: string, handedAtMs: number, responseEnded = false) {
  return { id, task: { script: `/srv${uri}`, params: ['SCRIPT_NAME', uri] }, req: { method: 'GET', uri, startedAtMs: handedAtMs }, responseEnded }
}

function slots (entries: Array<[number, number]>, heapUsed = 0) {
  const ids = new Int32Array(3)
  const startedAt = new Float64Array(3)
  entries.forEach(([id, atMs], i) => { ids[i] = id; startedAt[i] = atMs })
  return { runningIds: ids, runningStartedAtMs: startedAt, heapUsed: new Float64Array([heapUsed]) }
}

describe('thread snapshot', () => {
  test('an idle thread: no request yet, then its last one', () => {
    const thread = { id: 1, startedAtMs: 100, served: 0, jobs: [], last: null }
    assert.deepEqual(describeThread(thread, undefined, 500), { id: 1, startedAtMs: origin + 100, requests: 0, heapUsedBytes: 0, state: 'Idle', request: null })
    const last = lastRequestOf(job(7, '/a.mjs', 200), 230, null)
    assert.deepEqual(last, { params: ['SCRIPT_NAME', '/a.mjs'], script: '/srv/a.mjs', method: 'GET', uri: '/a.mjs', durationMs: 30, cpuUs: -1, memoryBytes: -1 })
    const measured = lastRequestOf(job(7, '/a.mjs', 200), 230, { cpuUserUs: 400, cpuSystemUs: 100, heapBytes: 9000 })
    assert.equal(measured.cpuUs, 500)
    assert.equal(measured.memoryBytes, 9000)
    const idle = describeThread({ ...thread, served: 1, last }, slots([], 4096), 500)
    assert.equal(idle.state, 'Idle')
    assert.equal(idle.request, last)
    assert.equal(idle.heapUsedBytes, 4096)
  })

  test('a busy thread: the request that started first on it, its start from the shared slot', () => {
    const now = 1000
    const waiting = job(9, '/waiting.mjs', 10) // handed first, but still waiting in the scheduler
    const older = job(8, '/older.mjs', 20)
    const newer = job(10, '/newer.mjs', 30)
    const thread = { id: 2, startedAtMs: 0, served: 3, jobs: [waiting, newer, older], last: null }
    const s = describeThread(thread, slots([[10, origin + 700], [8, origin + 400]]), now)
    assert.equal(s.state, 'Running')
    assert.equal(s.request?.uri, '/older.mjs')
    assert.ok(Math.abs((s.request?.durationMs ?? 0) - 600) < 1e-6)
    // Its response ended, its waitUntil() work goes on: php's Finishing.
    const finishing = describeThread({ ...thread, jobs: [job(8, '/older.mjs', 20, true)] }, slots([[8, origin + 400]]), now)
    assert.equal(finishing.state, 'Finishing')
  })

  test('slots not known yet (no HELLO): timed from the hand-over', () => {
    const s = describeThread({ id: 3, startedAtMs: 0, served: 1, jobs: [job(1, '/x.mjs', 250)], last: null }, undefined, 1000)
    assert.equal(s.state, 'Running')
    assert.ok(Math.abs((s.request?.durationMs ?? 0) - 750) < 1e-6)
  })

  test('only requests waiting in the scheduler: Running, duration 0', () => {
    const s = describeThread({ id: 4, startedAtMs: 0, served: 1, jobs: [job(5, '/w.mjs', 250)], last: null }, slots([]), 1000)
    assert.equal(s.state, 'Running')
    assert.equal(s.request?.durationMs, 0)
  })
})
