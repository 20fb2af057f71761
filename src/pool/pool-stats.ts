// A pool's counters, in one place: what php-fpm's scoreboard holds for the status page
// (php-fpm.md §4.4: accepted conn, listen queue, max listen queue, idle/active/total processes,
// max active processes, max children reached, slow requests) plus node-fpm's own (requests refused by the
// queue, threads started, recycled, retired, died; requests timed out, threads terminated or
// stuck). The pool updates them as things happen; snapshot() gives a plain copy for the status
// page and the tests.

export interface PoolCounters {
  /** performance.timeOrigin-based epoch ms of the pool's start (php's "start time"). */
  readonly startedAtMs: number
  /** Requests handed to the pool (php's "accepted conn"). */
  readonly accepted: number
  /** Requests that finished on a thread (a response, a handler error or a refusal by the handler). */
  readonly completed: number
  /** Most requests waiting in the queue at once since start (php's "max listen queue"). */
  readonly maxQueued: number
  /** Requests answered 503 at once because request.queue_max were already waiting. */
  readonly refusedQueueFull: number
  /** Requests answered 503 after waiting request.queue_timeout in the queue. */
  readonly refusedQueueTimeout: number
  /** Requests answered 503 because the pool was closing. */
  readonly refusedClosed: number
  /** "max children reached" episodes (php's counter; never for static pools). */
  readonly maxChildrenReached: number
  /** Requests that ran longer than request_slowlog_timeout (php's "slow requests"): the slowlog increments it, once per request. */
  readonly slowRequests: number
  /** Requests taken back from a busy thread's scheduler before they started (pool.ts #takeBack) and run by another. */
  readonly takenBack: number
  /** Most threads with a request at once since start (php's "max active processes"). */
  readonly maxActive: number
  readonly threadsStarted: number
  /** Threads replaced after pm.max_requests. */
  readonly threadsRecycled: number
  /** Threads retired because their heap in use after a request exceeded pm.heap_soft_limit. */
  readonly threadsOverHeapLimit: number
  /** Idle threads retired by the process manager (dynamic max_spare_servers, ondemand idle timeout). */
  readonly threadsRetired: number
  /** Threads that ended on their own (crash, process.exit(), out of memory). */
  readonly threadsDied: number
  /** Of those, threads V8 ended at their heap cap (pm.heap_limit: ERR_WORKER_OUT_OF_MEMORY). */
  readonly threadsOutOfMemory: number
  /** Emergency restarts of the pool's threads (emergency_restart_threshold deaths within emergency_restart_interval). */
  readonly emergencyRestarts: number
  /** Requests that ran longer than request_terminate_timeout (answered 504). */
  readonly requestsTimedOut: number
  /** Promise rejections nobody handled, in handler code (logged; the thread is kept). */
  readonly unhandledRejections: number
  /** Exceptions thrown from callbacks outside any handler's await (logged; the thread is retired). */
  readonly uncaughtExceptions: number
  /** Threads terminated because a request on them did not end within request_terminate_timeout_grace. */
  readonly threadsTerminated: number
  /** Terminated threads that did not exit: stuck in a blocking system call. */
  readonly threadsStuck: number
}

export interface PoolGauges {
  /** Threads that serve or will serve requests: ready and starting, not leaving. */
  readonly threads: number
  readonly idle: number
  readonly active: number
  readonly starting: number
  /** Threads on their way out (recycled, finishing their last requests; terminated, until they exit). */
  readonly leaving: number
  /** Of those, threads stuck in a blocking call after their terminate(): beyond pm.max_children until they exit. */
  readonly stuck: number
  /** Requests waiting in the queue now (php's "listen queue"). */
  readonly queued: number
  /** request.queue_max (php's "listen queue len"). */
  readonly queueMax: number
}

export type PoolStatsSnapshot = PoolCounters & PoolGauges

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export class PoolStats {
  readonly counters: Mutable<PoolCounters> = {
    startedAtMs: performance.timeOrigin + performance.now(),
    accepted: 0,
    completed: 0,
    maxQueued: 0,
    refusedQueueFull: 0,
    refusedQueueTimeout: 0,
    refusedClosed: 0,
    maxChildrenReached: 0,
    slowRequests: 0,
    takenBack: 0,
    maxActive: 0,
    threadsStarted: 0,
    threadsRecycled: 0,
    threadsOverHeapLimit: 0,
    threadsRetired: 0,
    threadsDied: 0,
    threadsOutOfMemory: 0,
    emergencyRestarts: 0,
    requestsTimedOut: 0,
    unhandledRejections: 0,
    uncaughtExceptions: 0,
    threadsTerminated: 0,
    threadsStuck: 0
  }

  queued (length: number): void {
    if (length > this.counters.maxQueued) this.counters.maxQueued = length
  }

  active (count: number): void {
    if (count > this.counters.maxActive) this.counters.maxActive = count
  }

  snapshot (gauges: PoolGauges): PoolStatsSnapshot {
    return { ...this.counters, ...gauges }
  }
}
