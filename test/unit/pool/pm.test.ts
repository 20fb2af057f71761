// The process manager's decisions (src/pool/pm.ts) against php-fpm's maintenance algorithm
// (fpm_process_ctl.c fpm_pctl_perform_idle_server_maintenance and fpm_pctl_on_socket_accept,
// php-fpm.md §8), tick by tick. The expected thread counts are worked out by hand from php's C
// code for the same load shape; a tiny simulator plays the pool: spawned threads are ready at the
// next tick (as a forked php child is), `load` requests are in flight at each tick.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PM_START, initialThreads, maintain, onWaiting, threadMaxRequests } from '../../../src/pool/pm.ts'
import type { PmDecision, PmMemory, PmSettings, PmThread } from '../../../src/pool/pm.ts'

const DYNAMIC: PmSettings = {
  mode: 'dynamic',
  maxChildren: 20,
  startServers: 5,
  minSpareServers: 5,
  maxSpareServers: 14,
  maxSpawnRate: 32,
  processIdleTimeoutMs: 10_000,
  threadConcurrency: 1
}

interface SimThread { id: number, startedAtMs: number, lastActiveMs: number, busy: boolean }

/** Runs one heartbeat per entry of `loads`; returns the thread count after each and the decisions. */
function simulate (s: PmSettings, loads: number[]): { totals: number[], decisions: PmDecision[], memory: PmMemory } {
  let nextId = 1
  let now = 0
  const threads: SimThread[] = []
  const add = (n: number): void => {
    for (let i = 0; i < n; i++) threads.push({ id: nextId++, startedAtMs: now, lastActiveMs: now, busy: false })
  }
  add(initialThreads(s))
  let memory = PM_START
  const totals: number[] = []
  const decisions: PmDecision[] = []
  for (const load of loads) {
    now += 1000
    // The oldest threads take the requests (the pool hands work to the oldest free thread).
    threads.forEach((t, i) => {
      const busy = i < load
      if (busy !== t.busy) t.lastActiveMs = now
      t.busy = busy
    })
    const view: PmThread[] = threads.map(t => ({ id: t.id, idle: !t.busy, startedAtMs: t.startedAtMs, lastActiveMs: t.lastActiveMs }))
    const d = maintain(s, memory, { nowMs: now, threads: view, starting: 0, waiting: Math.max(0, load - threads.length) })
    memory = d.memory
    decisions.push(d)
    if (d.retire !== null) threads.splice(threads.findIndex(t => t.id === d.retire), 1)
    add(d.spawn)
    totals.push(threads.length)
  }
  return { totals, decisions, memory }
}

describe('pm = dynamic', () => {
  it('scales up at a rate doubling each tick, then down by one idle thread per tick', () => {
    // php, 12 requests in flight on 5 threads (min_spare 5, max_spare 14, max_children 20):
    // idle 0 < 5: fork min(rate, 5 - idle, 20 - running) = 1, 2, 4, then 5 (rate 8, capped by
    // min_spare - idle); then 17 threads, 5 idle: nothing. Load gone: 17 idle > 14, one killed per tick.
    const { totals, decisions } = simulate(DYNAMIC, [12, 12, 12, 12, 12, 12, 0, 0, 0, 0, 0])
    assert.deepEqual(totals, [6, 8, 12, 17, 17, 17, 16, 15, 14, 14, 14])
    assert.deepEqual(decisions.map(d => d.spawn), [1, 2, 4, 5, 0, 0, 0, 0, 0, 0, 0])
    assert.deepEqual(decisions.map(d => d.memory.spawnRate), [2, 4, 8, 16, 1, 1, 1, 1, 1, 1, 1])
    // "seems busy" once the rate reaches 8, with php's numbers: spawning 8, 0 idle, 12 total.
    assert.deepEqual(decisions.map(d => d.busy), [null, null, null, { spawning: 8, idle: 0, total: 12 }, null, null, null, null, null, null, null])
    assert.ok(decisions.every(d => !d.maxChildrenReached))
  })

  it('retires the idle thread that started first', () => {
    const { decisions } = simulate({ ...DYNAMIC, startServers: 14 }, [0, 0])
    // 14 threads started together (ids 1..14), then 1 more: the oldest idle ones go first.
    assert.equal(decisions[0]?.retire, null) // 14 idle is not more than 14
    const more = simulate({ ...DYNAMIC, startServers: 14, maxSpareServers: 12 }, [0, 0, 0])
    assert.deepEqual(more.decisions.map(d => d.retire), [1, 2, null])
  })

  it('a "max children reached" episode: warned once, until a spawn succeeds again', () => {
    const s: PmSettings = { ...DYNAMIC, maxChildren: 6, startServers: 2, minSpareServers: 2, maxSpareServers: 4 }
    const loads = [10, 10, 10, 10, 10, 3, 10, 0, 0, 0, 10, 10, 10]
    const { totals, decisions } = simulate(s, loads)
    // fork 1 (2 -> 3), 2 (-> 5), then min(4, 2, 6 - 5) = 1 (-> 6); at 6 with idle < 2: the warning,
    // rate back to 1, once; load 3 leaves 3 idle (not < 2, not > 4); at max again: still the same
    // episode (php resets the flag only when it forks); load gone: 6 idle > 4, 5 > 4, 4; load
    // back: fork 1 (flag reset), fork min(2, 2, 1) = 1, at max: a new episode.
    assert.deepEqual(totals, [3, 5, 6, 6, 6, 6, 6, 5, 4, 4, 5, 6, 6])
    assert.deepEqual(decisions.map(d => d.maxChildrenReached),
      [false, false, false, true, false, false, false, false, false, false, false, false, true])
    assert.deepEqual(decisions.map(d => d.memory.spawnRate), [2, 4, 8, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1])
  })

  it('doubles the rate while it is below pm.max_spawn_rate: a cap of 10 is overshot to 16, as php', () => {
    const s: PmSettings = { ...DYNAMIC, maxChildren: 200, startServers: 40, minSpareServers: 40, maxSpareServers: 100, maxSpawnRate: 10 }
    const { decisions } = simulate(s, Array(7).fill(1000) as number[])
    assert.deepEqual(decisions.map(d => d.spawn), [1, 2, 4, 8, 16, 16, 16])
    assert.deepEqual(decisions.map(d => d.memory.spawnRate), [2, 4, 8, 16, 16, 16, 16])
  })

  it('counts starting threads as running and idle, as a freshly forked php child', () => {
    const s: PmSettings = { ...DYNAMIC, minSpareServers: 3, maxSpareServers: 5 }
    const threads: PmThread[] = [1, 2, 3].map(id => ({ id, idle: false, startedAtMs: 0, lastActiveMs: 0 }))
    const d = maintain(s, { spawnRate: 4, maxChildrenWarned: false }, { nowMs: 1000, threads, starting: 2, waiting: 0 })
    assert.equal(d.spawn, 1) // min(4, 3 - 2 idle, 20 - 5)
  })

  it('starts pm.start_servers threads', () => {
    assert.equal(initialThreads(DYNAMIC), 5)
  })
})

describe('pm = static', () => {
  const s: PmSettings = { ...DYNAMIC, mode: 'static', maxChildren: 4 }
  it('starts pm.max_children threads and keeps them, whatever the load', () => {
    assert.equal(initialThreads(s), 4)
    const { totals, decisions } = simulate(s, [0, 10, 10, 0, 0])
    assert.deepEqual(totals, [4, 4, 4, 4, 4])
    assert.ok(decisions.every(d => d.retire === null && !d.maxChildrenReached && d.busy === null))
  })
  it('makes up for threads that are missing (one that failed to start)', () => {
    const d = maintain(s, PM_START, { nowMs: 0, threads: [{ id: 1, idle: true, startedAtMs: 0, lastActiveMs: 0 }], starting: 1, waiting: 0 })
    assert.equal(d.spawn, 2)
  })
})

describe('pm = ondemand', () => {
  const s: PmSettings = { ...DYNAMIC, mode: 'ondemand', maxChildren: 3, startServers: 0, minSpareServers: 0, maxSpareServers: 0, processIdleTimeoutMs: 2000 }
  const thread = (id: number, idle: boolean, startedAtMs = 0, lastActiveMs = 0): PmThread => ({ id, idle, startedAtMs, lastActiveMs })

  it('starts no thread up front', () => {
    assert.equal(initialThreads(s), 0)
  })

  it('starts one thread per request that finds none free, up to pm.max_children', () => {
    // php's accept event: no idle child and below max_children: fork one.
    assert.equal(onWaiting(s, PM_START, { nowMs: 0, threads: [], starting: 0, waiting: 1 }).spawn, 1)
    // a thread is already starting for the one waiting request
    assert.equal(onWaiting(s, PM_START, { nowMs: 0, threads: [], starting: 1, waiting: 1 }).spawn, 0)
    // a second request waits: a second thread (php forks on every event without an idle child)
    assert.equal(onWaiting(s, PM_START, { nowMs: 0, threads: [], starting: 1, waiting: 2 }).spawn, 1)
    assert.equal(onWaiting(s, PM_START, { nowMs: 0, threads: [thread(1, false)], starting: 1, waiting: 2 }).spawn, 1)
    // an idle thread will take it
    assert.equal(onWaiting(s, PM_START, { nowMs: 0, threads: [thread(1, true)], starting: 0, waiting: 1 }).spawn, 0)
  })

  it('at pm.max_children: "max children reached" once per episode; a spawn ends the episode', () => {
    const full = { nowMs: 0, threads: [thread(1, false), thread(2, false), thread(3, false)], starting: 0, waiting: 1 }
    const first = onWaiting(s, PM_START, full)
    assert.deepEqual([first.spawn, first.maxChildrenReached], [0, true])
    const second = onWaiting(s, first.memory, full)
    assert.deepEqual([second.spawn, second.maxChildrenReached], [0, false])
    const room = onWaiting(s, second.memory, { ...full, threads: [thread(1, false), thread(2, false)] })
    assert.deepEqual([room.spawn, room.memory.maxChildrenWarned], [1, false])
    assert.equal(onWaiting(s, room.memory, full).maxChildrenReached, true)
  })

  it('retires, one per tick, the oldest-started idle thread once it has been idle longer than pm.process_idle_timeout', () => {
    const threads = [thread(1, true, 0, 1000), thread(2, true, 100, 500), thread(3, false, 200, 0)]
    // php looks only at the idle child that started first (last_idle_child): thread 1, idle since 1000.
    assert.equal(maintain(s, PM_START, { nowMs: 3000, threads, starting: 0, waiting: 0 }).retire, null)
    assert.equal(maintain(s, PM_START, { nowMs: 3001, threads, starting: 0, waiting: 0 }).retire, 1)
    // then thread 2 (idle since 500) on the next tick
    assert.equal(maintain(s, PM_START, { nowMs: 4001, threads: threads.slice(1), starting: 0, waiting: 0 }).retire, 2)
    // a busy thread is never retired
    assert.equal(maintain(s, PM_START, { nowMs: 99_000, threads: threads.slice(2), starting: 0, waiting: 0 }).retire, null)
  })

  it('scripted load: up to the demand, then down one per tick after the idle timeout', () => {
    // 3 requests at once on an empty pool: 3 threads; the load stops at t = 2 s; each tick from
    // the first one past 2 s of idleness retires one.
    let memory = PM_START
    let threads: PmThread[] = []
    for (let waiting = 1; waiting <= 3; waiting++) {
      // the threads asked for so far are still starting
      const d = onWaiting(s, memory, { nowMs: 0, threads: [], starting: threads.length, waiting })
      memory = d.memory
      threads = [...threads, ...Array.from({ length: d.spawn }, (_, i) => thread(threads.length + i + 1, false, 0, 0))]
    }
    assert.equal(threads.length, 3)
    threads = threads.map(t => ({ ...t, idle: true, lastActiveMs: 2000 }))
    const totals: number[] = []
    for (let now = 3000; now <= 8000; now += 1000) {
      const d = maintain(s, memory, { nowMs: now, threads, starting: 0, waiting: 0 })
      memory = d.memory
      if (d.retire !== null) threads = threads.filter(t => t.id !== d.retire)
      totals.push(threads.length)
    }
    // idle 1 s, 2 s (not more than 2 s), then 3 s: one per tick
    assert.deepEqual(totals, [3, 3, 2, 1, 0, 0])
  })

  it('asks again for a thread when requests wait and none is coming (a start failed)', () => {
    assert.equal(maintain(s, PM_START, { nowMs: 0, threads: [], starting: 0, waiting: 2 }).spawn, 1)
    assert.equal(maintain(s, PM_START, { nowMs: 0, threads: [], starting: 1, waiting: 2 }).spawn, 0)
  })
})

describe('threadMaxRequests', () => {
  it('is Infinity without pm.max_requests, else max_requests plus a draw of 0..jitter', () => {
    assert.equal(threadMaxRequests({ maxRequests: 0, maxRequestsJitter: 10 }), Infinity)
    assert.equal(threadMaxRequests({ maxRequests: 500, maxRequestsJitter: 0 }), 500)
    const seen = new Set<number>()
    for (let i = 0; i < 2000; i++) seen.add(threadMaxRequests({ maxRequests: 100, maxRequestsJitter: 3 }))
    assert.deepEqual([...seen].sort((a, b) => a - b), [100, 101, 102, 103])
  })
})
