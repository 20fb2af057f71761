// php-fpm's slowlog (php-fpm.md §7): a request that has run request_slowlog_timeout on its thread
// is logged once, with the JavaScript stack of that thread, to the pool's `slowlog` file.
//
// - Detection is php's: a periodic check, every min(request_terminate_timeout, request_slowlog_timeout)/3
//   (at least 130 ms), of the requests running on threads, timed from their start on the thread
//   (the slots the thread's scheduler publishes: queueing does not count). php compares whole
//   seconds; milliseconds here. Like php (Running state only), a request whose response has ended
//   (ctx.finishRequest, waitUntil work: php's Finishing) is not timed.
// - Then php's WARNING `... executing too slow (X.XXXXXX sec), logging`, the `slow requests` counter
//   (when the trace starts, as php), NOTICE `about to trace`, the capture (worker-backtrace.ts),
//   the entry appended to the file (slowlog-entry.ts), NOTICE `finished trace of`. php stops the
//   child with ptrace meanwhile; a thread is paused for about a millisecond, only while its stack is
//   read, and the request goes on normally.
// - The file is created at start (mode 0600; failure stops the start, as php's "Unable to create
//   or open slowlog") and opened in append mode for each entry, so it needs no reopen.
// - With pm.thread_concurrency > 1 a thread runs several requests: the stack is the thread's, so
//   it may be another request's code that is running.
// - Nothing of this exists when request_slowlog_timeout is 0: no timer, no inspector session.

import { appendFile } from 'node:fs/promises'
import { closeSync, openSync } from 'node:fs'
import { FpmError } from '../common/errors.ts'
import type { PoolConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import { formatSlowlogEntry, requestFrames, type SlowlogTrace } from './slowlog-entry.ts'
import { WorkerBacktracer } from './worker-backtrace.ts'

/** A request running on a thread, as the pool sees it. */
export interface RunningRequest {
  /** The pool's id of the request: it is traced once. */
  readonly id: number
  readonly threadId: number
  readonly script: string
  readonly method: string
  /** REQUEST_URI, with its query. */
  readonly uri: string
  /** Epoch ms when it started on its thread. */
  readonly startedAtMs: number
}

/** php's heartbeat floor (fpm_pctl_heartbeat: FPM_PCTL_MIN_HEARTBEAT). */
const MIN_CHECK_EVERY_MS = 130
/**
 * How long a capture may wait for each answer of the thread. A thread that runs JavaScript or
 * idles answers within milliseconds (the first capture of a thread, tens); one blocked in a system
 * call answers nothing until the call returns: its entry says `+++ dump failed`.
 */
const CAPTURE_TIMEOUT_MS = 1000
const RESOURCES_TIMEOUT_MS = 200

/** php: min(request_terminate_timeout, request_slowlog_timeout) / 3 over the timeouts set, at least 130 ms. */
export function slowlogCheckEveryMs (slowlogTimeoutMs: number, terminateTimeoutMs: number): number {
  const shortest = terminateTimeoutMs > 0 ? Math.min(slowlogTimeoutMs, terminateTimeoutMs) : slowlogTimeoutMs
  return Math.max(MIN_CHECK_EVERY_MS, Math.floor(shortest / 3))
}

const own = [new URL('../', import.meta.url).href, ...piscinaDir()]

/** node-fpm's own code (src/) and piscina's: where a trace ends. */
function isOwn (url: string): boolean {
  return own.some((dir) => url.startsWith(dir))
}

function piscinaDir (): string[] {
  try {
    return [new URL('../', import.meta.resolve('piscina')).href]
  } catch {
    return []
  }
}

export interface SlowlogOptions {
  readonly config: PoolConfig
  readonly log: Logger
  /** The requests running on the pool's threads now. */
  readonly running: () => Iterable<RunningRequest>
  /** A slow request is being traced (the pool's `slowRequests` counter). */
  readonly onSlow: () => void
}

export class Slowlog {
  readonly #file: string
  readonly #timeoutMs: number
  readonly #depth: number
  readonly #poolName: string
  readonly #log: Logger
  readonly #running: () => Iterable<RunningRequest>
  readonly #onSlow: () => void
  readonly #backtracer: WorkerBacktracer
  readonly #timer: NodeJS.Timeout
  /** Ids of running requests already traced. */
  #traced = new Set<number>()
  #closed = false

  /**
   * The pool's slowlog, or null when request_slowlog_timeout is 0. Creates the file when `slowlog`
   * is set, as php does at start: throws FPM_ERR_CONFIG_POOL when it cannot.
   */
  static start (opts: SlowlogOptions): Slowlog | null {
    const { timeoutMs, file } = opts.config.slowlog
    if (file === null) return null
    try {
      closeSync(openSync(file, 'a', 0o600))
    } catch (err) {
      throw new FpmError('FPM_ERR_CONFIG_POOL', `[pool ${opts.config.name}] Unable to create or open slowlog(${file}): ${(err as Error).message}`, { cause: err })
    }
    return timeoutMs > 0 ? new Slowlog(opts, file) : null
  }

  private constructor (opts: SlowlogOptions, file: string) {
    const config = opts.config
    this.#file = file
    this.#timeoutMs = config.slowlog.timeoutMs
    this.#depth = config.slowlog.traceDepth
    this.#poolName = config.name
    this.#log = opts.log
    this.#running = opts.running
    this.#onSlow = opts.onSlow
    this.#backtracer = WorkerBacktracer.acquire()
    this.#backtracer.unavailable().then((why) => {
      if (why !== null && !this.#closed) this.#log.warn(`slowlog: the stacks of slow requests cannot be read (their entries say '+++ dump failed'): ${why}`)
    }, () => {})
    this.#timer = setInterval(() => { this.#check() }, slowlogCheckEveryMs(this.#timeoutMs, config.request.terminateTimeoutMs)).unref()
  }

  /** Stops checking; traces under way still write their entry. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#backtracer.release()
  }

  #check (): void {
    const nowMs = performance.timeOrigin + performance.now()
    const traced = new Set<number>()
    for (const r of this.#running()) {
      if (this.#traced.has(r.id)) {
        traced.add(r.id)
        continue
      }
      const elapsedMs = nowMs - r.startedAtMs
      if (elapsedMs < this.#timeoutMs) continue
      traced.add(r.id)
      this.#trace(r, elapsedMs).catch((err: unknown) => { this.#log.error({ err }, `slowlog: tracing thread ${r.threadId} failed`) })
    }
    // Only the requests still running are remembered.
    this.#traced = traced
  }

  async #trace (r: RunningRequest, elapsedMs: number): Promise<void> {
    const log = this.#log
    const fields = { thread: r.threadId, script: r.script, method: r.method, uri: r.uri, elapsedMs: Math.round(elapsedMs) }
    this.#onSlow()
    // php: "[pool %s] child %d, script '%s' (request: \"%s %s%s%s\") executing too slow (%d.%06d sec), logging"
    log.warn(fields, `thread ${r.threadId}, script '${r.script}' (request: "${r.method} ${r.uri}") executing too slow (${(elapsedMs / 1000).toFixed(6)} sec), logging`)
    log.info({ thread: r.threadId }, `about to trace thread ${r.threadId}`)
    const atMs = performance.timeOrigin + performance.now()
    const bt = await this.#backtracer.capture(r.threadId, CAPTURE_TIMEOUT_MS)
    let trace: SlowlogTrace
    if (bt.kind === 'failed') {
      log.warn({ thread: r.threadId, reason: bt.reason }, `slowlog: no stack for thread ${r.threadId}: ${bt.reason}`)
      trace = { kind: 'failed' }
    } else {
      const frames = bt.kind === 'stack' ? requestFrames(bt.frames, this.#depth, isOwn) : null
      trace = frames !== null
        ? { kind: 'frames', frames }
        : { kind: 'awaiting', resources: await this.#backtracer.activeResources(r.threadId, RESOURCES_TIMEOUT_MS) }
    }
    const entry = formatSlowlogEntry({ atMs, poolName: this.#poolName, threadId: r.threadId, script: r.script, trace, micro: log.isLevelEnabled('debug') })
    try {
      await appendFile(this.#file, entry, { mode: 0o600 })
    } catch (err) {
      log.error({ err }, `unable to open slowlog (${this.#file}): ${(err as Error).message}`)
    }
    log.info({ thread: r.threadId, traceMs: Math.round(bt.ms) }, `finished trace of thread ${r.threadId}`)
  }
}
