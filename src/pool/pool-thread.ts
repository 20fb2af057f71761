// What the pool keeps of each thread (Thread), of its message channel and shared-memory slots
// (Channel, opened by the thread's HELLO: common/messages.ts, worker/scheduler.ts), and of each
// request it holds (Job). The pool (pool.ts) owns and mutates them; thread-snapshot.ts and
// dispatch-policy.ts read them.

import type { MessagePort, Worker } from 'node:worker_threads'
import type { MainMessage, WorkerTask } from '../common/messages.ts'
import type { PoolRequest, TaskFields } from './pool-request.ts'
import type { QueueEntry } from './request-queue.ts'
import type { LastRequest } from './thread-snapshot.ts'

/** A thread's message channel and the shared memory it published. */
export interface Channel {
  port: MessagePort | null
  /** The thread's execution slots in shared memory (scheduler.ts), known from its HELLO. */
  runningIds: Int32Array | null
  runningStartedAtMs: Float64Array | null
  /** The thread's heap in use when its last request ended (pm.heap_soft_limit), in shared memory. */
  heapUsed: Float64Array | null
  /** The claim words of the tasks it may be asked to give back (#takeBack), known from its HELLO. */
  claims: Int32Array | null
  /** pm.accept = threads: the requests it took, described (common/request-texts.ts), known from its HELLO. */
  requestTexts: Uint8Array | null
  /** pm.accept = threads: its counts (common/accept-counters.ts), known from its HELLO. */
  acceptCounts: Float64Array | null
  /** Messages for a thread whose HELLO has not arrived yet. */
  pending: Array<{ msg: MainMessage, transfer: ArrayBuffer[] | undefined }>
  /** Tasks handed to the thread in this turn of the event loop, sent in one TASKS message (#flushTasks). */
  outbox: WorkerTask[]
  outboxTransfer: ArrayBuffer[]
}

export function newChannel (): Channel {
  return { port: null, runningIds: null, runningStartedAtMs: null, heapUsed: null, claims: null, requestTexts: null, acceptCounts: null, pending: [], outbox: [], outboxTransfer: [] }
}

/** A thread of the pool, from piscina's `workerCreate` to its exit. */
export interface Thread {
  readonly id: number
  readonly worker: Worker
  /** performance.now() at start: the oldest idle thread is the one the process manager retires. */
  readonly startedAtMs: number
  /** pm.max_requests for this thread (with its jitter); Infinity: no limit. */
  readonly maxRequests: number
  /** Can take requests (a microtask after workerCreate, once piscina lists it as ready). */
  ready: boolean
  /**
   * Requests handed to it and not settled (running, or waiting in its scheduler), in the order handed.
   * An array, not a Set: a Set whose hash table is in the old generation is rebuilt there as requests
   * come and go, and the tables it leaves behind keep the requests they held alive through young
   * collections until the next full one (common/id-map.ts says more).
   */
  readonly jobs: Job[]
  inflight: number
  /** Requests handed to it so far. */
  served: number
  /** performance.now() when it last took or finished a request (or started). */
  lastActiveMs: number
  /** performance.now() when a request it ran last settled (-Infinity: none yet). */
  lastDoneMs: number
  /** performance.now() when it was last handed a request, and the recent time between two (NaN: unknown). */
  lastHandedMs: number
  handedEveryMs: number
  /** Nearing pm.max_requests: its replacement has been asked for; it no longer counts as one of the pool's threads. */
  due: boolean
  /**
   * Takes no more requests, and ends once it has none: recycled (pm.max_requests), retired by the
   * process manager, over pm.heap_soft_limit, after an uncaught exception, or by an emergency restart.
   */
  leaving: 'recycle' | 'retire' | 'heap' | 'fault' | 'restart' | 'timeout' | null
  /** An emergency restart replaces it: it serves until a new thread is ready, then leaves. */
  restarting: boolean
  /** An uncaught exception came from its code: its requests stay under request_terminate_timeout after their response. */
  faulted: boolean
  /** piscina dropped it (it failed) or terminate() was called: its exit is on the way. */
  gone: boolean
  /** The pool called terminate() on it: its exit is not a death. */
  endedByPool: boolean
  /** The error its Worker reported before it exited (ERR_WORKER_OUT_OF_MEMORY...). */
  exitError: (Error & { code?: unknown }) | null
  /** Its requests past request_terminate_timeout, in their grace: it takes no request meanwhile (it may be terminated). */
  timingOut: number
  /** performance.now() when it was terminated for request_terminate_timeout; 0: it was not. */
  terminatedAtMs: number
  /** Terminated, and not exited THREAD_EXIT_BOUND_MS later: stuck in a blocking system call. */
  stuck: boolean
  /** Fires THREAD_EXIT_BOUND_MS after it was terminated for request_terminate_timeout. */
  exitTimer: NodeJS.Timeout | null
  /** The last request it finished, for the status page (thread-snapshot.ts). */
  last: LastRequest | null
  /**
   * pm.accept = threads: its requests (by the thread's own ids) seen past request_terminate_timeout in
   * its shared slots, each with its request_terminate_timeout_grace timer (null: none, or over).
   */
  readonly timedOut: Map<number, NodeJS.Timeout | null>
}

/** One request in the pool. */
export interface Job extends QueueEntry {
  readonly id: number
  readonly req: PoolRequest
  readonly task: TaskFields
  /** May wait in a busy thread's scheduler (prefetch): only when it can be dispatched again. */
  readonly prefetchable: boolean
  /** Dispatches so far (a request that never started on a thread that died is dispatched again). */
  readonly attempt: number
  /** The thread it was handed to; null while queued. */
  thread: Thread | null
  /** That thread's execution slots (null: unknown). */
  slots: Int32Array | null
  /** Its claim word on that thread (worker/scheduler.ts RunningSlots.claims); -1: none, it cannot be taken back. */
  claim: number
  /** Its client went away while it had no thread yet, or between two threads. */
  aborted: boolean
  /** The thread ended its response on the channel (finishRequest, or waitUntil work goes on): php's Finishing state. */
  responseEnded: boolean
  /** performance.now() when it exceeded request_terminate_timeout; 0: it has not. */
  timedOutAtMs: number
  /** The end of its request_terminate_timeout_grace. */
  graceTimer: NodeJS.Timeout | null
  /**
   * It got 500 because an uncaught exception came from its code, and its handler did not end within
   * request_terminate_timeout_grace after that: its thread ends as soon as it runs nothing else.
   */
  abandoned: boolean
  /** The end of that grace. */
  abandonTimer: NodeJS.Timeout | null
}

/** A free claim word of `channel`'s thread, now holding `jobId`; -1: none (the task cannot be taken back). */
export function claimWord (channel: Channel, jobId: number): number {
  const words = channel.claims
  if (words === null) return -1
  for (let i = 0; i < words.length; i++) {
    if (Atomics.load(words, i) === 0) {
      Atomics.store(words, i, jobId)
      return i
    }
  }
  return -1
}

/** Takes `job` out of a thread's jobs, keeping their order; false when it is not there. */
export function removeJob (jobs: Job[], job: Job): boolean {
  const i = jobs.indexOf(job)
  if (i === -1) return false
  jobs.splice(i, 1)
  return true
}
