// The thread's request scheduler. piscina may hand a thread more tasks than it runs at once
// (prefetch: the next request is already here when the current one ends, instead of a round trip
// through the main thread); they wait here in arrival order and start only when a slot is free.
// With one slot (the default) a thread runs exactly one request at a time, as a php-fpm child does.
//
// Which requests are running is published in shared memory (`RunningSlots`): the main thread reads
// it when a thread dies to tell the requests that were running (they failed) from those that had
// not started (they are dispatched again, never run twice), and it gives the real start time.
// With pm.heap_soft_limit, the thread's heap in use is published there too when each request ends
// (v8.getHeapStatistics(): about 0.3 µs), before the task's result leaves: the pool reads it when
// the result arrives, without a message of its own.
//
// A task's result is delivered (posted to the main thread) before its slot is freed and before the
// next task starts: a next task that never yields (a busy loop, then request_terminate_timeout) would
// otherwise keep the result on the thread, and the pool, which finds the ended task in no slot, would
// take it for one that never started and run it again elsewhere.

import { performance } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import type { WorkerResult, WorkerTask } from '../common/messages.ts'

/** Per thread: request id (0 = free) and start time (epoch ms) of each execution slot, and the heap in use after the last request. */
export interface RunningSlots {
  readonly ids: Int32Array
  readonly startedAtMs: Float64Array
  /** One slot: V8's used_heap_size (bytes) when the last request ended; 0 until measured. */
  readonly heapUsed: Float64Array
  /**
   * Claim words of the tasks the main thread may take back (WorkerTask.claim): the main thread
   * writes a task's id in its word when it sends it; whoever swaps the id for 0 first owns the
   * task: this thread when it starts it, or the main thread when it takes it back (pool.ts, a
   * request waiting behind a slow one). A task whose id is gone from its word is never run here.
   */
  readonly claims: Int32Array
}

/** Claim words per thread: tasks beyond them are sent without one (they cannot be taken back). */
export const CLAIM_SLOTS = 64

export function createRunningSlots (concurrency: number): RunningSlots {
  return {
    ids: new Int32Array(new SharedArrayBuffer(4 * concurrency)),
    startedAtMs: new Float64Array(new SharedArrayBuffer(8 * concurrency)),
    heapUsed: new Float64Array(new SharedArrayBuffer(8)),
    claims: new Int32Array(new SharedArrayBuffer(4 * CLAIM_SLOTS))
  }
}

const NOT_RUN: WorkerResult = { response: null, error: null }
/** performance.timeOrigin is a getter (a brand check, then a call into Node) and never changes: read once. */
const TIME_ORIGIN_MS = performance.timeOrigin

/**
 * Hands a task's outcome to the main thread, synchronously: `result`, or `failure` when running it
 * threw (node-fpm's own bug; handler errors are in the result), and how long it held the thread
 * (ms; -1: it never ran). Not called for a task the main thread took back (it runs elsewhere).
 */
export type Deliver = (id: number, result: WorkerResult | null, failure: unknown, serviceMs: number) => void

/** process.threadCpuUsage: Node 23.9 / 22.19; before, the process's CPU time (all threads) is the best there is. */
const threadCpuUsage: (previous?: NodeJS.CpuUsage) => NodeJS.CpuUsage =
  typeof process.threadCpuUsage === 'function' ? (p) => process.threadCpuUsage(p) : (p) => process.cpuUsage(p)

/** What a task that threw or rejected is delivered with: never null (null means it did not fail). */
function asFailure (err: unknown): unknown {
  return err ?? new Error('a task failed without a reason')
}

export class Scheduler {
  readonly slots: RunningSlots
  readonly #run: (task: WorkerTask) => WorkerResult | Promise<WorkerResult>
  readonly #deliver: Deliver
  readonly #measureHeap: boolean
  readonly #measureUsage: Int32Array | null
  readonly #waiting: WorkerTask[] = []
  #running = 0
  /** #next is starting waiting tasks: a task that ends synchronously inside it does not start another loop. */
  #starting = false

  constructor (concurrency: number, run: (task: WorkerTask) => WorkerResult | Promise<WorkerResult>, deliver: Deliver, opts: { measureHeap?: boolean, measureUsage?: Int32Array } = {}) {
    this.slots = createRunningSlots(concurrency)
    this.#run = run
    this.#deliver = deliver
    this.#measureHeap = opts.measureHeap === true
    this.#measureUsage = opts.measureUsage ?? null
  }

  /** Runs the task now, or once a slot is free (its outcome goes to `deliver`). */
  submit (task: WorkerTask): void {
    if (this.#running < this.slots.ids.length) this.#startClaimed(task)
    else this.#waiting.push(task)
  }

  /**
   * Takes the task's claim word (which frees the word for later tasks): false when the main thread
   * took the task back first (it runs elsewhere; nothing is said of it here).
   */
  #claim (task: WorkerTask): boolean {
    return task.claim < 0 || Atomics.compareExchange(this.slots.claims, task.claim, task.id, 0) === task.id
  }

  #startClaimed (task: WorkerTask): void {
    if (this.#claim(task)) this.#start(task)
  }

  /** An ABORT for a request still waiting here: it is dropped without running its handler. */
  dropWaiting (id: number): boolean {
    const i = this.#waiting.findIndex((task) => task.id === id)
    if (i === -1) return false
    const task = this.#waiting.splice(i, 1)[0] as WorkerTask
    if (this.#claim(task)) this.#deliver(id, NOT_RUN, null, -1)
    return true
  }

  /** Runs the task: a task that ends synchronously (RequestState.run) is delivered before this returns. */
  #start (task: WorkerTask): void {
    const { ids, startedAtMs } = this.slots
    const slot = ids.indexOf(0)
    this.#running++
    const startMs = performance.now()
    // Published before any handler code runs: a thread that dies from here on was running it.
    startedAtMs[slot] = TIME_ORIGIN_MS + startMs
    Atomics.store(ids, slot, task.id)
    let outcome: WorkerResult | Promise<WorkerResult> | null = null
    let failure: unknown = null
    try {
      outcome = this.#measureUsage !== null && this.#measureUsage[0] === 1 ? this.#runMeasured(task) : this.#run(task)
    } catch (err) {
      failure = asFailure(err)
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (result) => { this.#finish(task.id, slot, startMs, result, null) },
        (err: unknown) => { this.#finish(task.id, slot, startMs, null, asFailure(err)) })
      return
    }
    try {
      this.#finish(task.id, slot, startMs, outcome, failure)
    } catch (err) {
      // node-fpm's own bug in delivering: an unhandled rejection (worker/faults.ts logs it), as when
      // #start was async, rather than a throw into whoever submitted the task (a TASKS batch).
      void Promise.reject(err)
    }
  }

  #finish (id: number, slot: number, startMs: number, result: WorkerResult | null, failure: unknown): void {
    if (this.#measureHeap) this.slots.heapUsed[0] = getHeapStatistics().used_heap_size
    try {
      // Out before the slot says it ended (see the top of this file).
      this.#deliver(id, result, failure, performance.now() - startMs)
    } finally {
      Atomics.store(this.slots.ids, slot, 0)
      this.#running--
      this.#next()
    }
  }

  /**
   * The access log's %C and %M, the status page's last request cpu and memory (about 3 µs per request,
   * only when asked for: WorkerData.measureUsage): the thread's CPU time over the request and the
   * larger of its heap in use at the start and at the end. With pm.thread_concurrency > 1 requests
   * that overlap on the thread share these numbers.
   */
  async #runMeasured (task: WorkerTask): Promise<WorkerResult> {
    const cpu0 = threadCpuUsage()
    const heap0 = getHeapStatistics().used_heap_size
    const result = await this.#run(task)
    const cpu = threadCpuUsage(cpu0)
    const heapBytes = Math.max(heap0, getHeapStatistics().used_heap_size)
    return { response: result.response, error: result.error, usage: { cpuUserUs: cpu.user, cpuSystemUs: cpu.system, heapBytes } }
  }

  #next (): void {
    if (this.#starting) return
    this.#starting = true
    try {
      while (this.#running < this.slots.ids.length && this.#waiting.length > 0) {
        this.#startClaimed(this.#waiting.shift() as WorkerTask)
      }
    } finally {
      this.#starting = false
    }
  }
}
