// What the status page's `full` view shows of each thread (php's per-process scoreboard slot,
// php-fpm.md §4.5): its state, start, requests, and the request it runs now or ran last. Read
// from the pool's own bookkeeping and the thread's shared execution slots (worker/scheduler.ts),
// only when a `full` status page is asked for; the one cost on the request path is `lastRequestOf`,
// one small object per finished request. Formatting (labels, units, `-`) is status/report.ts's.

import type { RequestUsage } from '../common/messages.ts'

/** A request as the status page describes it. */
export interface ThreadRequest {
  /** The FastCGI params as the thread got them (the PARAMS text, or decoded flat [name, value, ...]). */
  readonly params: string | readonly string[]
  /** The module that serves it (the resolved SCRIPT_FILENAME, or the pool's handler). */
  readonly script: string
  readonly method: string
  /** REQUEST_URI, for when the params cannot be read. */
  readonly uri: string
  /** Running: since it started on the thread; done: how long it ran. */
  readonly durationMs: number
  /** Done and measured: its CPU time (µs) and memory (bytes), see LastRequest; else -1. */
  readonly cpuUs: number
  readonly memoryBytes: number
}

export interface ThreadSnapshot {
  /** The thread id (what the status page shows as pid). */
  readonly id: number
  /** php's stages: Idle (no request), Running, Finishing (the response ended, ctx.waitUntil work goes on). */
  readonly state: 'Idle' | 'Running' | 'Finishing'
  /** Epoch ms. */
  readonly startedAtMs: number
  /** Requests handed to it so far, the current one included. */
  readonly requests: number
  /** The request it runs (the longest-running one when it runs several), else the last one it ran; null: none yet. */
  readonly request: ThreadRequest | null
  /** Its heap in use when its last request ended (measured with pm.heap_soft_limit only; 0: not measured). */
  readonly heapUsedBytes: number
}

/** A finished request, kept on its thread until the next one finishes. */
export interface LastRequest {
  readonly params: string | readonly string[]
  readonly script: string
  readonly method: string
  readonly uri: string
  readonly durationMs: number
  /** CPU time (user + system) the thread spent on it, µs; -1: not measured. */
  readonly cpuUs: number
  /** The larger of the thread's heap in use at its start and end, bytes; -1: not measured. */
  readonly memoryBytes: number
}

/** The parts of the pool's Job that are read here. */
interface JobView {
  readonly id: number
  readonly task: { readonly script: string, readonly params: string | readonly string[] }
  readonly req: { readonly method: string, readonly uri: string, readonly startedAtMs: number }
  readonly responseEnded: boolean
}

/** The parts of the pool's Thread that are read here. */
interface ThreadView {
  readonly id: number
  /** performance.now() at start. */
  readonly startedAtMs: number
  readonly served: number
  readonly jobs: Iterable<JobView>
  readonly last: LastRequest | null
}

/** The thread's shared execution slots (null: its HELLO has not arrived). */
interface SlotsView {
  readonly runningIds: Int32Array | null
  readonly runningStartedAtMs: Float64Array | null
  readonly heapUsed: Float64Array | null
}

/** `job` just settled on its thread (`nowMs`: performance.now(); `usage`: its cost, when the thread measured it). */
export function lastRequestOf (job: JobView, nowMs: number, usage: RequestUsage | null): LastRequest {
  return {
    params: job.task.params,
    script: job.task.script,
    method: job.req.method,
    uri: job.req.uri,
    durationMs: job.req.startedAtMs > 0 ? nowMs - job.req.startedAtMs : 0,
    cpuUs: usage === null ? -1 : usage.cpuUserUs + usage.cpuSystemUs,
    memoryBytes: usage === null ? -1 : usage.heapBytes
  }
}

/** `nowMs`: performance.now(). */
export function describeThread (thread: ThreadView, slots: SlotsView | undefined, nowMs: number): ThreadSnapshot {
  const origin = performance.timeOrigin
  const ids = slots?.runningIds ?? null
  const startedAt = slots?.runningStartedAtMs ?? null
  // The request it runs: the one that started first on the thread (requests it holds that wait in
  // its scheduler have not started); its start from the shared slot, else from the hand-over.
  let current: JobView | null = null
  let currentStartMs = Infinity
  for (const job of thread.jobs) {
    let startMs: number
    if (ids === null || startedAt === null) {
      startMs = origin + job.req.startedAtMs
    } else {
      const slot = ids.indexOf(job.id)
      startMs = slot === -1 ? Infinity : startedAt[slot] ?? Infinity // -1: it waits in the scheduler
    }
    if (current === null || startMs < currentStartMs) {
      current = job
      currentStartMs = startMs
    }
  }
  const heapUsedBytes = slots?.heapUsed?.[0] ?? 0
  const base = { id: thread.id, startedAtMs: origin + thread.startedAtMs, requests: thread.served, heapUsedBytes }
  if (current === null) return { ...base, state: 'Idle', request: thread.last }
  const durationMs = currentStartMs === Infinity ? 0 : Math.max(0, origin + nowMs - currentStartMs)
  return {
    ...base,
    state: current.responseEnded ? 'Finishing' : 'Running',
    request: { params: current.task.params, script: current.task.script, method: current.req.method, uri: current.req.uri, durationMs, cpuUs: -1, memoryBytes: -1 }
  }
}
