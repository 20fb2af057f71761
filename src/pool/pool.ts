// One pool = one piscina instance plus the per-thread channels its workers open (messages.ts).
// The pool owns the map from pool request id to the request in flight, routes worker messages to
// it, and knows which thread runs which request (a custom balancer records it at hand-off time:
// the start time excludes queueing, which request_terminate_timeout and the slowlog need).
// It knows nothing of sockets or FastCGI: the server implements PoolRequest.

import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import {
  Msg, TRANSFER_MIN_BYTES, type WorkerTask, type WorkerResult, type WorkerMessage, type MainMessage, type WorkerData,
  type SerializedError, type HelloMessage
} from '../common/messages.ts'
import type { PoolConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'

/** What the pool needs from a request it runs. Implemented by server/exchange.ts. */
export interface PoolRequest {
  /** Assigned by the pool at dispatch. */
  poolId: number
  /** The thread that runs it (0 until handed to a thread). */
  threadId: number
  /** performance.now() when a thread took it (0 while queued). */
  startedAtMs: number
  onHead (head: string, body: Uint8Array | null, end: boolean): void
  onChunk (body: Uint8Array | null, end: boolean, failed: boolean): void
  onPull (bytes: number): void
  onWorkerLog (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err: SerializedError | null): void
  /** The task settled: `result` on success, `error` when the thread died or the pool refused it. */
  onSettled (result: WorkerResult | null, error: Error | null): void
}

interface Channel {
  port: MessagePort | null
  /** The thread's execution slots in shared memory (scheduler.ts), known from its HELLO. */
  runningIds: Int32Array | null
  runningStartedAtMs: Float64Array | null
  /** Messages for a thread whose HELLO has not arrived yet. */
  pending: Array<{ msg: MainMessage, transfer: ArrayBuffer[] | undefined }>
}

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>
type BalancedTask = Parameters<LoadBalancer>[0]
type BalancedWorker = Parameters<LoadBalancer>[1][number]

/**
 * What piscina carries for each task under queueOptionsSymbol (never sent to the thread):
 * the request, and what the balancer and a thread death need to know about this dispatch.
 */
interface Ticket {
  readonly req: PoolRequest
  readonly task: Omit<WorkerTask, 'id'>
  /** May wait in a busy thread's scheduler (prefetch): only when it can be dispatched again. */
  readonly prefetchable: boolean
  /** Dispatches so far (a request that never started on a thread that died is dispatched again). */
  readonly attempt: number
  /** The execution slots of the thread it was handed to (null: that thread's HELLO had not arrived). */
  slots: Int32Array | null
}

/**
 * Tasks a thread may hold beyond the ones it runs, so the next request is already there when one
 * ends (no round trip through the main thread in between). Only onto a thread whose running
 * requests all started less than PREFETCH_MAX_AGE_MS ago: a slow request does not collect a queue
 * behind it while another thread could free up first.
 */
const PREFETCH_PER_THREAD = 2
const PREFETCH_MAX_AGE_MS = 5
const MAX_DISPATCH_ATTEMPTS = 3

const workerEntry = fileURLToPath(new URL('../worker/entry.ts', import.meta.url))
const kQueueOptions = Piscina.queueOptionsSymbol

export interface PoolStats {
  readonly threads: number
  readonly queued: number
  readonly active: number
  readonly completed: number
}

export class Pool {
  readonly config: PoolConfig
  readonly log: Logger
  readonly #piscina: Piscina
  readonly #channels = new Map<number, Channel>()
  readonly #requests = new Map<number, PoolRequest>()
  /** ABORTs of requests still queued (no thread yet): sent when a thread takes the task (#balance). */
  readonly #queuedAborts = new Map<number, MainMessage>()
  #nextId = 1
  #closed = false
  /** pm.thread_concurrency: requests one thread runs at once. */
  readonly #concurrency: number

  constructor (config: PoolConfig, log: Logger) {
    this.config = config
    this.log = log
    const workerData: WorkerData = {
      poolName: config.name,
      env: config.env,
      phpValues: config.phpValues,
      phpAdminValues: config.phpAdminValues,
      threadConcurrency: config.pm.threadConcurrency
    }
    this.#concurrency = config.pm.threadConcurrency
    const threads = config.pm.maxChildren
    this.#piscina = new Piscina({
      filename: workerEntry,
      minThreads: config.pm.mode === 'ondemand' ? 0 : config.pm.mode === 'dynamic' ? config.pm.startServers : threads,
      maxThreads: threads,
      idleTimeout: config.pm.mode === 'static' ? Infinity : config.pm.processIdleTimeoutMs,
      concurrentTasksPerWorker: this.#concurrency + PREFETCH_PER_THREAD,
      // A task the balancer cannot place yet goes back to the head of the queue, not the tail.
      stricterFIFO: true,
      // 'async': an idle thread keeps its event loop running, so ctx.waitUntil() work and timers
      // left behind by a handler are not frozen in Atomics.wait (STYLE.md §8).
      atomics: 'async',
      workerData,
      env: workerEnv(config),
      resourceLimits: config.heapLimitMb > 0 ? { maxOldGenerationSizeMb: config.heapLimitMb } : {},
      loadBalancer: (task, workers) => this.#balance(task, workers),
      recordTiming: false
    })
    this.#piscina.on('message', (msg: unknown) => { this.#onParentMessage(msg) })
    this.#piscina.on('workerDestroy', (worker: { id: number }) => { this.#channels.delete(worker.id) })
    this.#piscina.on('error', (err: Error) => { this.log.error({ err }, 'pool error') })
  }

  get stats (): PoolStats {
    return {
      threads: this.#piscina.threads.length,
      queued: this.#piscina.queueSize,
      active: this.#requests.size,
      completed: this.#piscina.completed
    }
  }

  /** Runs `task` (its id is set here) for `req`. Never throws: failures arrive as req.onSettled(null, err). */
  dispatch (req: PoolRequest, task: Omit<WorkerTask, 'id'>): void {
    this.#dispatch(req, task, 1)
  }

  #dispatch (req: PoolRequest, task: Omit<WorkerTask, 'id'>, attempt: number): void {
    const id = this.#nextId++
    req.poolId = id
    req.threadId = 0
    this.#requests.set(id, req)
    const transfer = task.body !== null && task.body.byteLength >= TRANSFER_MIN_BYTES ? [task.body.buffer as ArrayBuffer] : undefined
    // A moved body is gone with a thread that dies; a streamed one is tied to the connection's reading.
    const ticket: Ticket = { req, task, prefetchable: transfer === undefined && !task.bodyStreaming, attempt, slots: null }
    const full = { ...task, id, [kQueueOptions]: ticket }
    this.#piscina.run(full, { transferList: transfer }).then(
      (result: WorkerResult) => {
        this.#drainChannel(req.threadId)
        this.#settle(id, req, result, null)
      },
      (err: Error) => {
        // Messages the thread posted before it died may still be queued on its channel:
        // let them arrive before the request is failed.
        setImmediate(() => {
          if (this.#neverStarted(ticket, id) && ticket.prefetchable && ticket.attempt < MAX_DISPATCH_ATTEMPTS && !this.#closed) {
            // It was waiting in the scheduler of a thread that died because of another request:
            // it never ran, so it runs elsewhere (exactly once).
            this.#requests.delete(id)
            this.#queuedAborts.delete(id)
            this.log.debug({ thread: req.threadId, attempt: ticket.attempt }, 'request was waiting on a thread that died: dispatched again')
            this.#dispatch(req, task, ticket.attempt + 1)
            return
          }
          this.#settle(id, req, null, err)
        })
      }
    )
  }

  /** The thread died: was request `id` in one of its execution slots? (unknown slots: assume it ran) */
  #neverStarted (ticket: Ticket, id: number): boolean {
    if (ticket.slots === null) return false
    return !ticket.slots.includes(id)
  }

  /** Sends a message to the thread running `req` (queued until that thread's channel is known). */
  send (req: PoolRequest, msg: MainMessage, transfer?: ArrayBuffer[]): void {
    if (!this.#requests.has(req.poolId)) return
    if (req.threadId === 0) {
      // Still queued: BODY and ACK only ever answer the worker's own messages, but an ABORT must
      // not be lost, or the handler would run later for a request that is gone, its signal never firing.
      if (msg.t === Msg.ABORT) this.#queuedAborts.set(req.poolId, msg)
      return
    }
    let channel = this.#channels.get(req.threadId)
    if (channel === undefined) {
      channel = { port: null, runningIds: null, runningStartedAtMs: null, pending: [] }
      this.#channels.set(req.threadId, channel)
    }
    if (channel.port === null) channel.pending.push({ msg, transfer })
    else channel.port.postMessage(msg, transfer)
  }

  /** Stops accepting work; running requests finish. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#piscina.close()
  }

  /** Terminates every thread now (SIGTERM). */
  async destroy (): Promise<void> {
    this.#closed = true
    await this.#piscina.destroy()
  }

  get closed (): boolean { return this.#closed }

  #settle (id: number, req: PoolRequest, result: WorkerResult | null, err: Error | null): void {
    this.#requests.delete(id)
    this.#queuedAborts.delete(id)
    req.onSettled(result, err)
  }

  /**
   * Delivers what the thread already posted on its channel before its task settled. The channel
   * and piscina's own port are two ports, and messages on different ports are not ordered: the task
   * result can overtake the last CHUNKs of a response (or a LOG), which would then be dropped as
   * being for an unknown request and leave the response unended. The worker queued them before
   * its result, so they are already there to be taken.
   */
  #drainChannel (threadId: number): void {
    const port = this.#channels.get(threadId)?.port
    if (port === null || port === undefined) return
    for (let entry = receiveMessageOnPort(port); entry !== undefined; entry = receiveMessageOnPort(port)) {
      this.#onWorkerMessage(entry.message as WorkerMessage)
    }
  }

  /**
   * piscina's load balancer: a thread with a free execution slot (the least busy), else, for a
   * prefetchable request, a thread whose running requests are all young (see PREFETCH_*).
   * Records which thread got the request.
   */
  #balance (task: BalancedTask, workers: BalancedWorker[]): BalancedWorker | null {
    const ticket = (task as unknown as Record<symbol, Ticket | undefined>)[kQueueOptions]
    let candidate: BalancedWorker | null = null
    let usage = this.#concurrency
    for (const worker of workers) {
      if (worker.terminating || worker.destroyed) continue
      if (worker.currentUsage < usage) { candidate = worker; usage = worker.currentUsage }
      if (usage === 0) break
    }
    if (candidate === null && ticket?.prefetchable === true) {
      const nowMs = performance.timeOrigin + performance.now()
      usage = this.#concurrency + PREFETCH_PER_THREAD
      for (const worker of workers) {
        if (worker.terminating || worker.destroyed || worker.currentUsage >= usage) continue
        if (!this.#runsOnlyYoungRequests(worker.id, nowMs)) continue
        candidate = worker
        usage = worker.currentUsage
      }
    }
    if (candidate !== null && ticket !== undefined) {
      const req = ticket.req
      req.threadId = candidate.id
      req.startedAtMs = performance.now()
      ticket.slots = this.#channels.get(candidate.id)?.runningIds ?? null
      const abort = this.#queuedAborts.get(req.poolId)
      if (abort !== undefined) {
        // Aborted while queued: the ABORT is posted ahead of the task; the thread drops the task
        // unrun if it is still waiting there, or fires its request.signal at once.
        this.#queuedAborts.delete(req.poolId)
        this.send(req, abort)
      }
    }
    return candidate
  }

  #runsOnlyYoungRequests (threadId: number, nowMs: number): boolean {
    const channel = this.#channels.get(threadId)
    if (channel?.runningIds == null || channel.runningStartedAtMs == null) return false
    const ids = channel.runningIds
    for (let i = 0; i < ids.length; i++) {
      if (Atomics.load(ids, i) !== 0 && nowMs - (channel.runningStartedAtMs[i] ?? 0) > PREFETCH_MAX_AGE_MS) return false
    }
    return true
  }

  #onParentMessage (msg: unknown): void {
    const hello = msg as HelloMessage
    if (typeof msg !== 'object' || msg === null || hello.t !== Msg.HELLO) return
    let channel = this.#channels.get(hello.threadId)
    if (channel === undefined) {
      channel = { port: null, runningIds: null, runningStartedAtMs: null, pending: [] }
      this.#channels.set(hello.threadId, channel)
    }
    const port = hello.port
    channel.port = port
    channel.runningIds = hello.runningIds
    channel.runningStartedAtMs = hello.runningStartedAtMs
    port.on('message', (m: WorkerMessage) => { this.#onWorkerMessage(m) })
    port.unref()
    for (const { msg: queued, transfer } of channel.pending) port.postMessage(queued, transfer)
    channel.pending.length = 0
  }

  #onWorkerMessage (m: WorkerMessage): void {
    const req = this.#requests.get(m.id)
    if (req === undefined) {
      if (m.t === Msg.LOG) this.#logWorker(m.level, m.msg, m.err)
      return
    }
    switch (m.t) {
      case Msg.HEAD: req.onHead(m.head, m.body, m.end); break
      case Msg.CHUNK: req.onChunk(m.body, m.end, m.failed); break
      case Msg.PULL: req.onPull(m.bytes); break
      case Msg.LOG: req.onWorkerLog(m.level, m.msg, m.err); break
    }
  }

  #logWorker (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err: SerializedError | null): void {
    this.log[level](err === null ? {} : { err }, msg)
  }
}

/** The environment of the pool's threads: php's clear_env (default yes) keeps only env[...]. */
function workerEnv (config: PoolConfig): Record<string, string> {
  const base: Record<string, string> = {}
  if (!config.clearEnv) {
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) base[k] = v
  }
  return Object.assign(base, config.env)
}
