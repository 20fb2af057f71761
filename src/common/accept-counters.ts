// pm.accept = threads: the figures the main thread cannot count itself, because requests no longer
// pass through it. Each thread writes its own counts (one writer, no atomics: the main thread adds
// them up for the status page). A few pool-wide words every thread updates atomically: the threads
// running a request now and the most at once (php's "max active processes", exact), and the open
// connections of all threads (worker/thread-server.ts AcceptBalance).

/**
 * Per thread: requests taken (the pool's own pages included: php's accepted conn), requests
 * completed, and 1 while it counts as active (so that the main thread can take back the active
 * count of a thread that ended in the middle of a request).
 */
export const ACCEPTED = 0
export const COMPLETED = 1
export const BUSY = 2
/** The thread's open connections (so that the main thread can take them off the pool's count when it ends). */
export const CONNECTIONS = 3
/**
 * The thread's last finished request, for the status page's full view: its id (in the thread's
 * request texts, common/request-texts.ts; 0: none yet), how long it ran (ms), and, when measured
 * (WorkerData.measureUsage), its CPU time (us) and memory (bytes); -1: not measured.
 */
export const LAST_ID = 4
export const LAST_DURATION_MS = 5
export const LAST_CPU_US = 6
export const LAST_MEMORY = 7

export function createThreadCounts (): Float64Array {
  return new Float64Array(new SharedArrayBuffer(8 * Float64Array.BYTES_PER_ELEMENT))
}

/** One more at `index` (the thread's own counts: it is their only writer). */
export function bump (counts: Float64Array, index: number): void {
  counts[index] = (counts[index] ?? 0) + 1
}

/** Pool-wide: threads with a request now, the most at once since start, and the open connections of all threads. */
const ACTIVE = 0
const MAX_ACTIVE = 1
const POOL_CONNECTIONS = 2

export function createPoolWords (): Int32Array {
  return new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT))
}

/** A thread accepted a connection: the pool's open connections, now. */
export function connectionOpened (active: Int32Array, counts: Float64Array): number {
  bump(counts, CONNECTIONS)
  return Atomics.add(active, POOL_CONNECTIONS, 1) + 1
}

/** A thread's connection closed, or (the main thread) a thread ended with `count` still open. */
export function connectionsClosed (active: Int32Array, counts: Float64Array, count = 1): void {
  counts[CONNECTIONS] = (counts[CONNECTIONS] ?? 0) - count
  Atomics.sub(active, POOL_CONNECTIONS, count)
}

/** Threads running a request now. */
export function activeThreads (active: Int32Array): number {
  return Atomics.load(active, ACTIVE)
}

/** A thread starts running a request after running none. */
export function threadBusy (active: Int32Array, counts: Float64Array): void {
  counts[BUSY] = 1
  const now = Atomics.add(active, ACTIVE, 1) + 1
  for (let max = Atomics.load(active, MAX_ACTIVE); now > max; max = Atomics.load(active, MAX_ACTIVE)) {
    if (Atomics.compareExchange(active, MAX_ACTIVE, max, now) === max) break
  }
}

/** A thread runs no request any more (its own call), or ended while it ran one (the main thread's). */
export function threadIdle (active: Int32Array, counts: Float64Array): void {
  if (counts[BUSY] !== 1) return
  counts[BUSY] = 0
  Atomics.sub(active, ACTIVE, 1)
}

export function maxActiveThreads (active: Int32Array): number {
  return Atomics.load(active, MAX_ACTIVE)
}
