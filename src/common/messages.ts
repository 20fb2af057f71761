// What crosses the thread boundary between the main thread (server/pool) and a worker thread.
// Everything here is structured-clone safe. Byte payloads are always Uint8Array views that cover
// their whole, exact-size ArrayBuffer (byteOffset 0, byteLength === buffer.byteLength): a view into
// a larger buffer would be cloned or transferred whole (node-runtime.md §4). Payloads of
// TRANSFER_MIN_BYTES or more are moved with a transferList, smaller ones are copied.

import { Buffer } from 'node:buffer'
import type { MessagePort } from 'node:worker_threads'
import type { PoolConfig } from '../config/types.ts'
import type { ParamsShape } from './params-shape.ts'

export const TRANSFER_MIN_BYTES = 16 * 1024
/** Fast-path response bodies up to this size cross as latin1 text (WorkerResult.response). */
export const TEXT_BODY_MAX_BYTES = 8 * 1024

/** The bytes of a body that may be latin1 text (WorkerResult.response.body). */
export function bodyBytes (body: Uint8Array | string | null): Uint8Array | null {
  return typeof body === 'string' ? Buffer.from(body, 'latin1') : body
}

/** Main thread -> worker: one FastCGI request, sent in a TASKS batch on the thread's channel. */
export interface WorkerTask {
  /** Request id, unique within the pool (not the FastCGI request id). */
  readonly id: number
  /** Absolute path of the ES module that serves this request. */
  readonly script: string
  /**
   * FastCGI params: the PARAMS stream as latin1 text, one char per byte (fastcgi/params.ts
   * paramsText: a one-byte string clones far cheaper than bytes or dozens of strings, and the
   * thread decodes it itself), or already decoded, flat: [name0, value0, ...] (latin1, byte-exact).
   */
  readonly params: string | string[]
  /**
   * pm.accept = threads only, where the task never leaves the thread: the shape of the decoded params
   * (common/params-shape.ts), so that the handler's side does not compare the names again. Never
   * in a TASKS message (it holds functions).
   */
  readonly shape?: ParamsShape | null
  /** The whole request body when it fitted in memory; null when there is none or it streams. */
  readonly body: Uint8Array | null
  /** True: the body arrives in MainMessage BODY chunks on the worker's channel (the worker PULLs them). */
  readonly bodyStreaming: boolean
  /** The request method is HEAD: the worker sends no body. */
  readonly isHead: boolean
  /** Its claim word in the thread's HelloMessage.claims (worker/scheduler.ts); -1: none, it cannot be taken back. */
  readonly claim: number
}

/** Worker -> main: a task's result, in a RESULT message. The task settles when the handler and its waitUntil work end. */
export interface WorkerResult {
  /**
   * Fast path: the whole response, when nothing was sent on the channel for this request.
   * `head` is the CGI header block, CRLF-terminated lines and the empty line ("Status: 404 Not Found\r\n...\r\n").
   * `body`: bytes, or up to TEXT_BODY_MAX_BYTES of them as latin1 text (one char per byte: a
   * one-byte string clones without the backing store a Uint8Array costs on both sides).
   */
  readonly response: { readonly head: string, readonly body: Uint8Array | string | null } | null
  /** The handler threw or rejected (before or after responding): main logs it with pool, script and URI. */
  readonly error: SerializedError | null
  /** Only when WorkerData.measureUsage says so: the thread's numbers for this request (access.format %C, %M; the status page's last request cpu and memory). */
  readonly usage?: RequestUsage
}

/**
 * What a request cost its thread (worker/scheduler.ts), for the access log and the status page:
 * three numbers, measured only when asked for (WorkerData.measureUsage).
 */
export interface RequestUsage {
  /** CPU time of the thread from the request's start to its end (process.threadCpuUsage), µs. */
  readonly cpuUserUs: number
  readonly cpuSystemUs: number
  /** The larger of the thread's V8 heap in use (used_heap_size) at the request's start and end, bytes. */
  readonly heapBytes: number
}

export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly stack: string
  readonly code: string | null
}

/** Message tags on the per-worker channel. */
export const Msg = {
  // worker -> main
  /** { t, threadId, port } sent once on parentPort at worker start-up: the worker's channel port. */
  HELLO: 1,
  /** { t, id, head, body, end }: the response head, optionally the first bytes, optionally the end. */
  HEAD: 2,
  /** { t, id, body, end, failed }: more response bytes (body may be null when only `end` is said);
   *  `failed`: the body stream broke after the head was sent (the response is incomplete). */
  CHUNK: 3,
  /** { t, id, bytes }: the handler wants up to `bytes` more request body bytes. */
  PULL: 4,
  /** { t, id, level, msg, err }: a log line about request `id` (id 0: not about a request). */
  LOG: 5,
  /** { t, id, kind, ... }: an error no handler caught (unhandled rejection, uncaught exception), from request `id` (0: unknown). */
  FAULT: 6,
  /** { t, id, head, body, error, usage, failure }: a task that ended, with its result (ResultMessage), sent as soon as it ends. */
  RESULT: 7,
  /** pm.accept = threads, { t, why }: the thread stopped accepting (pm.max_requests reached, or asked by STOP); its connections close once idle. */
  LEAVING: 8,
  /** pm.accept = threads, { t }: the thread that was LEAVING has no connection left: it may be terminated. */
  LEFT: 9,
  /** pm.accept = threads, { t, seq, query, isHead }: a status request came to the thread: the main thread renders the page. */
  STATUS: 15,
  /** pm.accept = threads, { t }: the thread listens on its copy of the socket: it counts as ready. */
  ACCEPTING: 18,
  /** pm.accept = threads, { t }: the thread's heap in use after a request is over pm.heap_soft_limit (HelloMessage.heapUsed says how much). */
  OVER_HEAP: 19,
  // main -> worker
  /** { t, id, body, end, error }: request body bytes; `error` is an FpmErrorCode when the body failed. */
  BODY: 10,
  /** { t, id, bytes }: main has written `bytes` response bytes to the socket: the worker may send more. */
  ACK: 11,
  /** { t, id, reason }: the web server aborted the request or the connection dropped. */
  ABORT: 12,
  /** { t, tasks }: requests for the thread, batched per turn of the main event loop (one message, one wake-up). */
  TASKS: 13,
  /** pm.accept = threads, { t }: stop accepting, close the connections once idle, then say LEFT. */
  STOP: 14,
  /** pm.accept = threads, { t, seq, head, body }: the status page a thread asked for. */
  STATUS_PAGE: 16,
  /** pm.accept = threads, { t }: SIGUSR1: reopen the thread's access log. */
  REOPEN: 17
} as const

/**
 * Bytes of response the worker may have in flight (sent but not ACKed) per request: a slow reader
 * holds at most this much per request in the server. 1 MiB lets a typical large response go out
 * without waiting for an ACK round trip (measured: 1 MiB echo +40% req/s against 256 KiB).
 */
export const RESPONSE_WINDOW_BYTES = 1024 * 1024
/** Request body bytes the worker asks for per PULL. */
export const BODY_PULL_BYTES = 256 * 1024

export interface HelloMessage {
  readonly t: typeof Msg.HELLO
  readonly threadId: number
  readonly port: MessagePort
  /** Shared memory: the id (0 = none) and start time (epoch ms) of the request in each execution slot. */
  readonly runningIds: Int32Array
  readonly runningStartedAtMs: Float64Array
  /** Shared memory: the thread's heap in use (V8 used_heap_size, bytes) when its last request ended (pm.heap_soft_limit; 0: not measured). */
  readonly heapUsed: Float64Array
  /** Shared memory: the claim words of the tasks the main thread may take back (worker/scheduler.ts RunningSlots.claims). */
  readonly claims: Int32Array
  /** pm.accept = threads: the requests the thread took, described (common/request-texts.ts); null otherwise. */
  readonly requestTexts: Uint8Array | null
  /** pm.accept = threads: the thread's counts (common/accept-counters.ts); null otherwise. */
  readonly acceptCounts: Float64Array | null
}
export interface HeadMessage { readonly t: typeof Msg.HEAD, readonly id: number, readonly head: string, readonly body: Uint8Array | null, readonly end: boolean }
export interface ChunkMessage { readonly t: typeof Msg.CHUNK, readonly id: number, readonly body: Uint8Array | null, readonly end: boolean, readonly failed: boolean }
export interface PullMessage { readonly t: typeof Msg.PULL, readonly id: number, readonly bytes: number }
export interface LogMessage {
  readonly t: typeof Msg.LOG
  readonly id: number
  readonly level: 'debug' | 'info' | 'warn' | 'error'
  readonly msg: string
  readonly err: SerializedError | null
  /** A line of the server's own code on a thread (pm.accept = threads, id 0): its fields. */
  readonly fields?: Readonly<Record<string, unknown>>
}
/**
 * An error no code of the thread caught: a promise rejection nobody handled, or an exception thrown
 * from a callback (a timer, an event listener). The request whose code it came from is known when
 * the error was raised in that request's async context (id 0, nulls: unknown).
 */
export interface FaultMessage {
  readonly t: typeof Msg.FAULT
  readonly id: number
  readonly kind: 'unhandledRejection' | 'uncaughtException'
  readonly script: string | null
  readonly method: string | null
  readonly uri: string | null
  /** An uncaught exception from a request that had not answered yet: it got 500 now. */
  readonly answered: boolean
  readonly err: SerializedError
}
/**
 * A task that ended, flat (resultOf() rebuilds its WorkerResult). A thread sends each one as soon as
 * its task ends, before it starts another (worker/scheduler.ts says why). A `failure` means the
 * task's promise rejected: a bug in node-fpm, not a handler error.
 */
export interface ResultMessage {
  readonly t: typeof Msg.RESULT
  readonly id: number
  /** The fast-path response's head; null: none (sent on the channel, aborted, or not run). */
  readonly head: string | null
  readonly body: Uint8Array | string | null
  readonly error: SerializedError | null
  readonly usage: RequestUsage | null
  readonly failure: SerializedError | null
  /**
   * How long the request held its thread, ms: from its start there to its result, measured by the
   * thread (worker/scheduler.ts), so that neither its wake-up nor the main thread's own delay in
   * reading the result counts; -1 when it never ran. The pool's dispatch policy reads it
   * (pool/dispatch-policy.ts nextServiceMs).
   */
  readonly serviceMs: number
}

/** The WorkerResult a RESULT message carries. */
export function resultOf (m: ResultMessage): WorkerResult {
  const response = m.head === null ? null : { head: m.head, body: m.body }
  return m.usage === null ? { response, error: m.error } : { response, error: m.error, usage: m.usage }
}
export interface LeavingMessage { readonly t: typeof Msg.LEAVING, readonly why: 'recycle' | 'asked' }
export interface LeftMessage { readonly t: typeof Msg.LEFT }
export interface StopMessage { readonly t: typeof Msg.STOP }
export interface StatusMessage { readonly t: typeof Msg.STATUS, readonly seq: number, readonly query: string, readonly isHead: boolean }
export interface StatusPageMessage { readonly t: typeof Msg.STATUS_PAGE, readonly seq: number, readonly head: string, readonly body: Uint8Array | null }
export type WorkerMessage = HeadMessage | ChunkMessage | PullMessage | LogMessage | FaultMessage | ResultMessage
export interface AcceptingMessage { readonly t: typeof Msg.ACCEPTING }
export interface OverHeapMessage { readonly t: typeof Msg.OVER_HEAP }
/** pm.accept = threads: what a thread says of itself (worker/thread-server.ts). */
export type AcceptMessage = LeavingMessage | LeftMessage | StatusMessage | AcceptingMessage | OverHeapMessage
export interface ReopenMessage { readonly t: typeof Msg.REOPEN }
/** pm.accept = threads: the main thread's messages about the thread itself. */
export type AcceptReply = StopMessage | StatusPageMessage | ReopenMessage

export interface BodyMessage { readonly t: typeof Msg.BODY, readonly id: number, readonly body: Uint8Array | null, readonly end: boolean, readonly error: string | null }
export interface AckMessage { readonly t: typeof Msg.ACK, readonly id: number, readonly bytes: number }
export interface AbortMessage { readonly t: typeof Msg.ABORT, readonly id: number, readonly reason: string }
/**
 * Requests for a thread, flat: entry i of each array is task `ids[i]`
 * (tasksMessage() builds it, taskAt() rebuilds a task). `bodies` is null when no task has one.
 */
export interface TasksMessage {
  readonly t: typeof Msg.TASKS
  readonly ids: number[]
  readonly scripts: string[]
  readonly params: Array<string | string[]>
  readonly bodies: Array<Uint8Array | null> | null
  /** TASK_BODY_STREAMING | TASK_IS_HEAD */
  readonly flags: number[]
  readonly claims: number[]
}
const TASK_BODY_STREAMING = 1
const TASK_IS_HEAD = 2

export function tasksMessage (tasks: readonly WorkerTask[]): TasksMessage {
  const n = tasks.length
  const ids = new Array<number>(n)
  const scripts = new Array<string>(n)
  const params = new Array<string | string[]>(n)
  const flags = new Array<number>(n)
  const claims = new Array<number>(n)
  let bodies: Array<Uint8Array | null> | null = null
  for (let i = 0; i < n; i++) {
    const task = tasks[i]!
    ids[i] = task.id
    scripts[i] = task.script
    params[i] = task.params
    flags[i] = (task.bodyStreaming ? TASK_BODY_STREAMING : 0) | (task.isHead ? TASK_IS_HEAD : 0)
    claims[i] = task.claim
    if (task.body !== null) (bodies ??= new Array<Uint8Array | null>(n).fill(null))[i] = task.body
  }
  return { t: Msg.TASKS, ids, scripts, params, bodies, flags, claims }
}

export function taskAt (m: TasksMessage, i: number): WorkerTask {
  const flags = m.flags[i] ?? 0
  return {
    id: m.ids[i] ?? 0,
    script: m.scripts[i] ?? '',
    params: m.params[i] ?? '',
    body: m.bodies?.[i] ?? null,
    bodyStreaming: (flags & TASK_BODY_STREAMING) !== 0,
    isHead: (flags & TASK_IS_HEAD) !== 0,
    claim: m.claims[i] ?? -1
  }
}
export type MainMessage = BodyMessage | AckMessage | AbortMessage | TasksMessage

/** workerData given to every thread of a pool. */
export interface WorkerData {
  readonly poolName: string
  /** `env` as the handler sees it (pool env[...] values; php_value entries under `php_value`). */
  readonly env: Readonly<Record<string, string>>
  readonly phpValues: Readonly<Record<string, string>>
  readonly phpAdminValues: Readonly<Record<string, string>>
  /** Requests one thread runs at once (1: php-fpm's model, a timeout kills exactly one request). */
  readonly threadConcurrency: number
  /** pm.heap_soft_limit is on: the thread measures its heap after each request (HelloMessage.heapUsed). */
  readonly measureHeap: boolean
  /**
   * One shared word: 1 when each WorkerResult must carry its `usage`: from the start when the access
   * log's format has %C or %M, else from the first `full` status page on (absent or 0: off).
   */
  readonly measureUsage?: Int32Array
  /**
   * pm.accept = threads: the pool's bound socket (a descriptor of the process, shared) and the pool's
   * config: the thread gets a descriptor of its own and serves its connections (thread-server.ts).
   */
  readonly accept?: {
    readonly fd: number
    /** Descriptors of the socket for the first threads, each taken once (pool.ts threadFdTable). */
    readonly threadFds: Int32Array
    readonly config: PoolConfig
    readonly logLevel: 'debug' | 'info' | 'warn' | 'error'
    /** Pool-wide, shared: common/accept-counters.ts. */
    readonly poolWords: Int32Array
  }
}
