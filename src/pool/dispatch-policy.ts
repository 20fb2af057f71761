// Which thread takes a request (pool.ts #place): a free one, or, for a request that may wait in a
// busy thread's scheduler (prefetch, worker/scheduler.ts), a thread that is churning through
// requests. While the pool's requests are quick, they go to the busiest such thread rather than to
// an idle one, so that about one thread per CPU does the work. Pure functions of what the pool
// keeps of its threads (pool-thread.ts); the pool acts on the answer.

import { availableParallelism } from 'node:os'

/** What the choice reads of a thread. */
export interface DispatchThread {
  /** Can take requests. */
  readonly ready: boolean
  /** Takes no more requests (recycled, retired...). */
  readonly leaving: string | null
  /** Its exit is on the way. */
  readonly gone: boolean
  /** Its requests past request_terminate_timeout: it takes none meanwhile. */
  readonly timingOut: number
  /** Requests handed to it and not settled. */
  readonly inflight: number
  /** performance.now() when a request it ran last settled (-Infinity: none yet). */
  readonly lastDoneMs: number
  /** The requests it holds, with when each was handed to it (performance.now()). */
  readonly jobs: Iterable<{ readonly req: { readonly startedAtMs: number } }>
}

/**
 * Tasks a thread may hold beyond the ones it runs, so the next request is already there when one
 * ends (no round trip through the main thread in between). Only onto a thread that is churning
 * through requests: it finished one less than PREFETCH_RECENT_DONE_MS ago, and the requests it
 * holds were all handed to it less than PREFETCH_MAX_AGE_MS ago (so they started even more
 * recently, if at all). A slow request does not collect a queue behind it while another thread
 * could free up first, nor does a thread that has not shown it is quick (a fresh one, or one that
 * was idle: a burst that arrives while threads start is not piled onto the first request), nor one
 * that is slow to take up what it was given. Never while a thread is starting: it takes the
 * waiting requests as soon as it is ready (pool.ts).
 */
const PREFETCH_PER_THREAD = 4
/**
 * Quick requests (QUICK_SERVICE_MS) go to the busiest thread, which may hold up to the pool's
 * requests / CPUS of them (at least PREFETCH_PER_THREAD, at most this): about one thread per CPU
 * does the work. With 4 each, 16 requests in flight kept 4 threads of 8 busy on 2 CPUs, each
 * sleeping and waking more (8 threads, json page, 16 kept conns: 26.7k -> 30.6k req/s).
 * Requests that wait behind a slow one are still taken back after PREFETCH_MAX_AGE_MS.
 */
const PREFETCH_QUICK_MAX = 32
const CPUS = availableParallelism()
/** A request handed to a thread that has not started this long after is taken back (pool.ts #takeBack). */
export const PREFETCH_MAX_AGE_MS = 5
const PREFETCH_RECENT_DONE_MS = 100
/**
 * While the pool's requests take a thread less than this on average (nextServiceMs), a request goes
 * to a thread that is already busy with quick requests (prefetch) rather than to an idle one: an
 * idle thread sleeps, and waking it costs the main thread 15-25 µs and the request a scheduling
 * delay (bench/micro/wake.ts), more than waiting behind a few quick requests. Measured with 8
 * threads on 2 CPUs: hello world 22k -> 34k req/s. A request that has not started
 * PREFETCH_MAX_AGE_MS after it was handed to a thread is taken back, so a request that turns out
 * slow holds no queue behind it.
 */
const QUICK_SERVICE_MS = 0.25
/**
 * Weight of the newest request in the pool's service time, which counts up to SERVICE_SAMPLE_MAX_MS
 * of each: a GC pause or one slow request does not flip the pool's choice (a pool of slow requests
 * crosses QUICK_SERVICE_MS within a few requests).
 */
const SERVICE_EWMA_WEIGHT = 0.02
const SERVICE_SAMPLE_MAX_MS = 10 * QUICK_SERVICE_MS

/** The pool's average service time after one more request that took its thread `sampleMs` (Infinity: none yet). */
export function nextServiceMs (serviceMs: number, sampleMs: number): number {
  const sample = Math.min(SERVICE_SAMPLE_MAX_MS, sampleMs)
  return serviceMs === Infinity ? sample : serviceMs + (sample - serviceMs) * SERVICE_EWMA_WEIGHT
}

/** The pool's requests are quick enough to concentrate on the busiest thread. */
export function isQuick (serviceMs: number): boolean {
  return serviceMs <= QUICK_SERVICE_MS
}

function takes<T extends DispatchThread> (t: T): boolean {
  return t.ready && t.leaving === null && !t.gone && t.timingOut === 0
}

/** A thread with a free execution slot (of `concurrency`): the least busy, the first (oldest) among equals. */
export function freeThread<T extends DispatchThread> (threads: Iterable<T>, concurrency: number): T | null {
  let best: T | null = null
  let usage = concurrency
  for (const t of threads) {
    if (t.inflight >= usage || !takes(t)) continue
    best = t
    usage = t.inflight
    if (usage === 0) break
  }
  return best
}

/**
 * For a prefetchable request: a thread with room whose requests are all young (see PREFETCH_*), the
 * least busy one; with `busiest`, the busiest one that already has a request (see QUICK_SERVICE_MS).
 * `requests`: all the pool holds, queued or on a thread.
 */
export function prefetchThread<T extends DispatchThread> (threads: Iterable<T>, concurrency: number, requests: number, busiest: boolean, nowMs = performance.now()): T | null {
  // Quick requests: as many on a thread as keeps about one busy thread per CPU.
  const depth = busiest ? Math.min(PREFETCH_QUICK_MAX, Math.max(PREFETCH_PER_THREAD, Math.ceil(requests / CPUS))) : PREFETCH_PER_THREAD
  const max = concurrency + depth
  let best: T | null = null
  for (const t of threads) {
    if (t.inflight >= max || (busiest && t.inflight === 0)) continue
    if (best !== null && (busiest ? t.inflight <= best.inflight : t.inflight >= best.inflight)) continue
    if (!takes(t) || !holdsOnlyYoungRequests(t, nowMs)) continue
    best = t
  }
  return best
}

function holdsOnlyYoungRequests (thread: DispatchThread, nowMs: number): boolean {
  if (nowMs - thread.lastDoneMs > PREFETCH_RECENT_DONE_MS) return false
  for (const job of thread.jobs) {
    if (nowMs - job.req.startedAtMs > PREFETCH_MAX_AGE_MS) return false
  }
  return true
}
