// The process manager's decisions (php's fpm_process_ctl.c: fpm_pctl_perform_idle_server_maintenance
// and fpm_pctl_on_socket_accept, php-fpm.md §8), as pure functions over what the pool sees: its
// settings, its threads, what the previous decisions remembered, and the time. The pool
// (pool.ts) calls maintain() from its 1 s heartbeat and onWaiting() when a request finds no free
// thread, then carries the decisions out on piscina. Nothing here knows about piscina or timers.
//
// Threads play php's children: "idle" is a thread with no request handed to it (a thread holding a
// prefetched request is active); a thread that is starting counts as running and idle at once, as
// a freshly forked php child does; threads that are leaving (recycled by pm.max_requests, or
// retired) are not counted at all.

import type { PmConfig } from '../config/types.ts'

/** The pool's pm.* settings the decisions read (threadConcurrency: a starting thread takes this many waiting requests). */
export type PmSettings = Pick<PmConfig, 'mode' | 'maxChildren' | 'startServers' | 'minSpareServers' | 'maxSpareServers' |
'maxSpawnRate' | 'processIdleTimeoutMs' | 'threadConcurrency'>

export interface PmThread {
  readonly id: number
  /** No request is handed to it. */
  readonly idle: boolean
  /** When it started (ms, on the clock of PmView.nowMs): the oldest idle thread is retired first. */
  readonly startedAtMs: number
  /** When it last took or finished a request (or started): ondemand's idle time runs from here. */
  readonly lastActiveMs: number
}

export interface PmView {
  readonly nowMs: number
  /** Ready threads that are not leaving, in any order. */
  readonly threads: readonly PmThread[]
  /** Threads asked for that are not ready yet. */
  readonly starting: number
  /** Requests waiting in the pool's queue for a thread. */
  readonly waiting: number
}

/** What the process manager remembers from one decision to the next (php's per-pool fields). */
export interface PmMemory {
  /** php's idle_spawn_rate: 1, doubled after each dynamic spawn up to pm.max_spawn_rate. */
  readonly spawnRate: number
  /** php's warn_max_children: a "max children reached" episode is under way. */
  readonly maxChildrenWarned: boolean
}

export const PM_START: PmMemory = { spawnRate: 1, maxChildrenWarned: false }

export interface PmDecision {
  /** Threads to start now. */
  readonly spawn: number
  /** A thread to retire now (an idle one), or null. At most one per heartbeat, as php. */
  readonly retire: number | null
  readonly memory: PmMemory
  /**
   * A "max children reached" episode begins: count it and log the warning (with php's wording:
   * `pm.max_children` from the heartbeat, `max_children` from ondemand's accept path).
   */
  readonly maxChildrenReached: boolean
  /** dynamic, spawn rate >= 8: php's "seems busy" warning and its numbers. */
  readonly busy: { readonly spawning: number, readonly idle: number, readonly total: number } | null
}

function decision (memory: PmMemory, spawn = 0, retire: number | null = null, maxChildrenReached = false,
  busy: PmDecision['busy'] = null): PmDecision {
  return { spawn, retire, memory, maxChildrenReached, busy }
}

/**
 * pm.max_requests for one thread, with its own pm.max_requests_jitter drawn (php: a random 0..jitter
 * per child, so that children recycle at different times); Infinity: no limit. Math.random: a
 * thread that accepts connections counts its own requests, and node:crypto would cost it ~0.5 MiB.
 */
export function threadMaxRequests (pm: Pick<PmConfig, 'maxRequests' | 'maxRequestsJitter'>): number {
  if (pm.maxRequests <= 0) return Infinity
  return pm.maxRequests + (pm.maxRequestsJitter > 0 ? Math.floor(Math.random() * (pm.maxRequestsJitter + 1)) : 0)
}

/** Threads a pool starts with: static all, dynamic pm.start_servers, ondemand none. */
export function initialThreads (s: PmSettings): number {
  if (s.mode === 'static') return s.maxChildren
  if (s.mode === 'dynamic') return s.startServers
  return 0
}

/** php's last_idle_child: the idle thread that started first. */
function oldestIdle (threads: readonly PmThread[]): PmThread | null {
  let oldest: PmThread | null = null
  for (const t of threads) {
    if (t.idle && (oldest === null || t.startedAtMs < oldest.startedAtMs)) oldest = t
  }
  return oldest
}

/** The 1 s maintenance pass for one pool. */
export function maintain (s: PmSettings, memory: PmMemory, view: PmView): PmDecision {
  const total = view.threads.length + view.starting
  switch (s.mode) {
    case 'static':
      // php replaces a child the moment it exits; here a thread that failed to start is also
      // made up for. Never a "max children reached" episode.
      return decision(memory, Math.max(0, s.maxChildren - total))
    case 'ondemand':
      return maintainOndemand(s, memory, view, total)
    case 'dynamic':
      return maintainDynamic(s, memory, view, total)
  }
}

function maintainDynamic (s: PmSettings, memory: PmMemory, view: PmView, total: number): PmDecision {
  const idle = view.threads.filter(t => t.idle).length + view.starting
  const candidate = oldestIdle(view.threads)
  if (idle > s.maxSpareServers && candidate !== null) {
    return decision({ ...memory, spawnRate: 1 }, 0, candidate.id)
  }
  if (idle < s.minSpareServers) {
    const rate = memory.spawnRate
    const atMax = (): PmDecision => decision({ spawnRate: 1, maxChildrenWarned: true }, 0, null, !memory.maxChildrenWarned)
    if (total >= s.maxChildren) return atMax()
    const busy = rate >= 8 ? { spawning: rate, idle, total } : null
    const n = Math.min(rate, s.minSpareServers - idle, s.maxChildren - total)
    if (n <= 0) return atMax()
    // php checks the cap before doubling: a cap that is not a power of two is overshot (10 -> 16).
    return decision({ spawnRate: rate < s.maxSpawnRate ? rate * 2 : rate, maxChildrenWarned: false }, n, null, false, busy)
  }
  return decision({ ...memory, spawnRate: 1 })
}

function maintainOndemand (s: PmSettings, memory: PmMemory, view: PmView, total: number): PmDecision {
  const candidate = oldestIdle(view.threads)
  if (candidate !== null && view.nowMs - candidate.lastActiveMs > s.processIdleTimeoutMs) {
    return decision(memory, 0, candidate.id)
  }
  // Not php's: requests wait with no thread coming for them (a thread asked for on their arrival
  // failed to start): ask again, once per heartbeat.
  if (view.waiting > 0 && view.starting === 0 && !view.threads.some(t => t.idle) && total < s.maxChildren) {
    return decision({ ...memory, maxChildrenWarned: false }, 1)
  }
  return decision(memory)
}

/**
 * A request found no free thread (php's ondemand accept event). ondemand: start one thread for it
 * unless the threads already starting will take it, or count a "max children reached" episode.
 * static and dynamic never start threads here: their heartbeat does.
 */
export function onWaiting (s: PmSettings, memory: PmMemory, view: PmView): PmDecision {
  if (s.mode !== 'ondemand') return decision(memory)
  const total = view.threads.length + view.starting
  if (total >= s.maxChildren) {
    return decision({ ...memory, maxChildrenWarned: true }, 0, null, !memory.maxChildrenWarned)
  }
  if (view.threads.some(t => t.idle)) return decision(memory)
  if (view.waiting <= view.starting * s.threadConcurrency) return decision(memory)
  return decision({ ...memory, maxChildrenWarned: false }, 1)
}
