// The status page's figures (php-fpm.md §4.4-4.5), built once per status request from the pool's
// counters and gauges (pool/pool-stats.ts) and, for `full`, its threads (pool/thread-snapshot.ts).
// One report serves every format (status/formats.ts renders it): units and php's conventions are
// applied here (epoch seconds, microseconds, `-` for an unknown value, php's field length caps).
//
// Where node-fpm's figures differ from php-fpm's (README "Status page and ping"):
// - listen queue / max listen queue / listen queue len: requests waiting in the pool's own queue for
//   a free thread, the most that ever waited, and request.queue_max. php reports the kernel's accept
//   queue; here connections are accepted at once and requests wait in the pool instead, so this is
//   the figure that means "requests waiting for a worker".
// - active processes never includes the status request: it is answered on the main thread.
// - per process: pid is the thread id. last request cpu is the thread's CPU time over its last
//   request (process.threadCpuUsage, user + system) divided by that request's duration, in %, as php
//   computes it; last request memory is the larger of the thread's V8 heap in use at that request's
//   start and end (php: the request's peak, in whole 2 MiB chunks). Both are measured on the thread
//   from the first `full` page on (pool.ts says why), 0 before; with pm.thread_concurrency > 1,
//   requests that overlap share them.

import { decodeParamsText } from '../fastcgi/index.ts'
import { ACCESS_FIELD_LIMITS } from '../log/access-format.ts'
import type { PmMode } from '../config/types.ts'
import type { PoolStatsSnapshot } from '../pool/pool-stats.ts'
import type { ThreadRequest, ThreadSnapshot } from '../pool/thread-snapshot.ts'

export interface StatusReport {
  readonly pool: string
  readonly processManager: PmMode
  /** Epoch seconds. */
  readonly startTime: number
  /** Seconds. */
  readonly startSince: number
  readonly acceptedConn: number
  readonly listenQueue: number
  readonly maxListenQueue: number
  readonly listenQueueLen: number
  readonly idleProcesses: number
  readonly activeProcesses: number
  readonly totalProcesses: number
  readonly maxActiveProcesses: number
  readonly maxChildrenReached: number
  readonly slowRequests: number
  /** `full` only; null for the short page. */
  readonly processes: readonly ProcessReport[] | null
}

export interface ProcessReport {
  readonly pid: number
  readonly state: string
  /** Epoch seconds. */
  readonly startTime: number
  readonly startSince: number
  readonly requests: number
  /** Microseconds: of the running request, or of the last one when Idle. */
  readonly requestDuration: number
  readonly requestMethod: string
  /** php's request URI (SCRIPT_NAME) and `?query` when there is one; `-` when unknown. */
  readonly requestUri: string
  readonly contentLength: number
  readonly user: string
  readonly script: string
  /** Percent, printed with 2 decimals. */
  readonly lastRequestCpu: number
  /** Bytes. */
  readonly lastRequestMemory: number
}

/** `nowMs`: epoch ms. `threads`: null for the short page. */
export function buildReport (pool: { readonly name: string, readonly mode: PmMode }, stats: PoolStatsSnapshot,
  threads: readonly ThreadSnapshot[] | null, nowMs: number): StatusReport {
  const nowSec = Math.floor(nowMs / 1000)
  const startTime = Math.floor(stats.startedAtMs / 1000)
  return {
    pool: cap(pool.name, ACCESS_FIELD_LIMITS.pool),
    processManager: pool.mode,
    startTime,
    startSince: Math.max(0, nowSec - startTime),
    acceptedConn: stats.accepted,
    listenQueue: stats.queued,
    maxListenQueue: stats.maxQueued,
    listenQueueLen: stats.queueMax,
    idleProcesses: stats.idle,
    activeProcesses: stats.active,
    totalProcesses: stats.threads,
    maxActiveProcesses: stats.maxActive,
    maxChildrenReached: stats.maxChildrenReached,
    slowRequests: stats.slowRequests,
    processes: threads === null ? null : threads.map((t) => processReport(t, nowSec))
  }
}

function processReport (t: ThreadSnapshot, nowSec: number): ProcessReport {
  const startTime = Math.floor(t.startedAtMs / 1000)
  const req = t.request === null ? null : requestFields(t.request)
  const idle = t.state === 'Idle'
  return {
    pid: t.id,
    state: t.state,
    startTime,
    startSince: Math.max(0, nowSec - startTime),
    requests: t.requests,
    requestDuration: t.request === null ? 0 : Math.floor(t.request.durationMs * 1000),
    requestMethod: req?.method ?? '-',
    requestUri: req?.uri ?? '-',
    contentLength: req?.contentLength ?? 0,
    user: req?.user ?? '-',
    script: req?.script ?? '-',
    // php: 0 unless the process is Idle (the figures are those of the finished request).
    lastRequestCpu: idle && t.request !== null ? cpuPercent(t.request) : 0,
    lastRequestMemory: idle && t.request !== null ? (t.request.memoryBytes >= 0 ? t.request.memoryBytes : t.heapUsedBytes) : 0
  }
}

/** php: (user + system) CPU / wall time of the request, in %. */
function cpuPercent (req: ThreadRequest): number {
  if (req.cpuUs < 0 || req.durationMs <= 0) return 0
  return req.cpuUs / 1000 / req.durationMs * 100
}

interface RequestFields {
  readonly method: string
  readonly uri: string
  readonly contentLength: number
  readonly user: string
  readonly script: string
}

/** The request's params, read only now (a `full` page), never on the request path. */
function requestFields (r: ThreadRequest): RequestFields {
  let flat: readonly string[]
  if (typeof r.params !== 'string') {
    flat = r.params
  } else {
    const out: string[] = []
    try {
      decodeParamsText(r.params, out)
    } catch { /* malformed: fall back on what the pool kept */ }
    flat = out
  }
  // php-fpm: the last of duplicate params wins.
  let scriptName: string | undefined
  let query = ''
  let contentLength = ''
  let authorization = ''
  for (let i = 0; i + 1 < flat.length; i += 2) {
    switch (flat[i]) {
      case 'SCRIPT_NAME': scriptName = flat[i + 1]; break
      case 'QUERY_STRING': query = flat[i + 1] ?? ''; break
      case 'CONTENT_LENGTH': contentLength = flat[i + 1] ?? ''; break
      case 'HTTP_AUTHORIZATION': authorization = flat[i + 1] ?? ''; break
    }
  }
  // php's request URI comes from SCRIPT_NAME; without it (a bare FastCGI client), REQUEST_URI's path.
  let path = scriptName ?? r.uri
  if (scriptName === undefined) {
    const q = path.indexOf('?')
    if (q !== -1) path = path.slice(0, q)
  }
  path = cap(utf8(path), ACCESS_FIELD_LIMITS.uri)
  const uri = path === '' ? '-' : query === '' ? path : `${path}?${cap(utf8(query), ACCESS_FIELD_LIMITS.query)}`
  const length = Number(contentLength)
  const user = basicAuthUser(authorization)
  return {
    method: r.method === '' ? '-' : cap(utf8(r.method), ACCESS_FIELD_LIMITS.method),
    uri,
    contentLength: Number.isSafeInteger(length) && length > 0 ? length : 0,
    user: user === '' ? '-' : cap(user, ACCESS_FIELD_LIMITS.user),
    script: r.script === '' ? '-' : cap(r.script, ACCESS_FIELD_LIMITS.script)
  }
}

/** php's PHP_AUTH_USER: the user of `Authorization: Basic base64(user:password)`, else ''. */
export function basicAuthUser (authorization: string): string {
  const m = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(authorization)
  if (m === null) return ''
  const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? '' : decoded.slice(0, colon)
}

/** A param value (latin1: one char per byte) read as UTF-8, as the page is UTF-8. */
function utf8 (latin1: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(latin1) ? latin1 : Buffer.from(latin1, 'latin1').toString('utf8')
}

/** php keeps these values in fixed-size scoreboard fields. */
function cap (s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s
}
