// One pool = one piscina instance plus the per-thread channels its workers open (messages.ts).
// The pool owns the map from pool request id to the request in flight, routes worker messages to
// it, and knows which thread runs which request (a custom balancer records it at hand-off time:
// the start time excludes queueing, which request_terminate_timeout and the slowlog need).
// It knows nothing of sockets or FastCGI: the server implements PoolRequest.

import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import {
  Msg, type WorkerTask, type WorkerResult, type WorkerMessage, type MainMessage, type WorkerData,
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
  /** Messages for a thread whose HELLO has not arrived yet. */
  pending: Array<{ msg: MainMessage, transfer: ArrayBuffer[] | undefined }>
}

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>
type BalancedTask = Parameters<LoadBalancer>[0]
type BalancedWorker = Parameters<LoadBalancer>[1][number]

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

  constructor (config: PoolConfig, log: Logger) {
    this.config = config
    this.log = log
    const workerData: WorkerData = {
      poolName: config.name,
      env: config.env,
      phpValues: config.phpValues,
      phpAdminValues: config.phpAdminValues
    }
    const threads = config.pm.maxChildren
    const concurrency = 1
    this.#piscina = new Piscina({
      filename: workerEntry,
      minThreads: config.pm.mode === 'ondemand' ? 0 : config.pm.mode === 'dynamic' ? config.pm.startServers : threads,
      maxThreads: threads,
      idleTimeout: config.pm.mode === 'static' ? Infinity : config.pm.processIdleTimeoutMs,
      concurrentTasksPerWorker: concurrency,
      // 'async': an idle thread keeps its event loop running, so ctx.waitUntil() work and timers
      // left behind by a handler are not frozen in Atomics.wait (STYLE.md §8).
      atomics: 'async',
      workerData,
      env: workerEnv(config),
      resourceLimits: config.heapLimitMb > 0 ? { maxOldGenerationSizeMb: config.heapLimitMb } : {},
      loadBalancer: (task, workers) => this.#balance(task, workers, concurrency),
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
    const id = this.#nextId++
    req.poolId = id
    this.#requests.set(id, req)
    const full = { ...task, id, [kQueueOptions]: req }
    const transfer = task.body !== null && task.body.byteLength >= 16 * 1024 ? [task.body.buffer as ArrayBuffer] : undefined
    this.#piscina.run(full, { transferList: transfer }).then(
      (result: WorkerResult) => {
        this.#drainChannel(req.threadId)
        this.#settle(id, req, result, null)
      },
      (err: Error) => {
        // Messages the thread posted before it died may still be queued on its channel:
        // let them arrive before the request is failed.
        setImmediate(() => { this.#settle(id, req, null, err) })
      }
    )
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
      channel = { port: null, pending: [] }
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

  #balance (task: BalancedTask, workers: BalancedWorker[], maxUsage: number): BalancedWorker | null {
    let candidate = null
    let usage = maxUsage
    for (const worker of workers) {
      if (worker.terminating || worker.destroyed) continue
      if (worker.currentUsage === 0) { candidate = worker; break }
      if (worker.currentUsage < usage) { candidate = worker; usage = worker.currentUsage }
    }
    if (candidate !== null) {
      const req = (task as unknown as Record<symbol, PoolRequest | undefined>)[kQueueOptions]
      if (req !== undefined) {
        req.threadId = candidate.id
        req.startedAtMs = performance.now()
        const abort = this.#queuedAborts.get(req.poolId)
        if (abort !== undefined) {
          // Aborted while queued: the ABORT is posted ahead of the task (the worker keeps ABORTs
          // that overtake their task, entry.ts). The two ports are not ordered, so the handler may
          // still start, but its request.signal then fires at once.
          this.#queuedAborts.delete(req.poolId)
          this.send(req, abort)
        }
      }
    }
    return candidate
  }

  #onParentMessage (msg: unknown): void {
    const hello = msg as HelloMessage
    if (typeof msg !== 'object' || msg === null || hello.t !== Msg.HELLO) return
    let channel = this.#channels.get(hello.threadId)
    if (channel === undefined) {
      channel = { port: null, pending: [] }
      this.#channels.set(hello.threadId, channel)
    }
    const port = hello.port
    channel.port = port
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
