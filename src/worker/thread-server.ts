// pm.accept = threads: this pool thread accepts and serves FastCGI connections itself, as a php-fpm
// child does, with the server's own code (server/listener.ts, connection.ts, exchange.ts) running
// on the thread. ThreadPool stands in for the main thread's Pool: a request it is given runs on
// this thread's scheduler, and what the server and the handler say to each other goes through
// microtasks, as it would through the channel (in order, never re-entrant). No message crosses to
// the main thread per request; the main thread keeps the pool (threads, limits, status) from the
// shared slots the scheduler publishes.
//
// The listening socket: each thread adopts a descriptor of its own of it (worker/socket-copy.ts).

import { performance } from 'node:perf_hooks'
import type { MessagePort } from 'node:worker_threads'
import { threadId } from 'node:worker_threads'
import { Msg } from '../common/messages.ts'
import { RequestTextWriter } from '../common/request-texts.ts'
import {
  ACCEPTED, COMPLETED, CONNECTIONS, LAST_CPU_US, LAST_DURATION_MS, LAST_ID, LAST_MEMORY,
  activeThreads, bump, connectionOpened, connectionsClosed, threadBusy, threadIdle
} from '../common/accept-counters.ts'
import type { AcceptMessage, LeavingMessage, MainMessage, StatusPageMessage, WorkerMessage, WorkerResult, WorkerTask } from '../common/messages.ts'
import type { OwnPage } from '../status/pages.ts'
import { FpmError } from '../common/errors.ts'
import { IdMap } from '../common/id-map.ts'
import type { PoolConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import type { AccessLog } from '../log/access-log.ts'
import { toPoolRequest, type PoolRequest, type TaskFields } from '../pool/pool-request.ts'
import type { Pool } from '../pool/pool.ts'
import { ScriptResolver } from '../pool/script-resolver.ts'
import { threadMaxRequests } from '../pool/pm.ts'
import { Listener } from '../server/listener.ts'

/** AcceptBalance's pause: about a thread's wake-up here (bench/micro/wake.ts), so that a woken thread gets to accept. */
const BALANCE_PAUSE_MS = 0.2

/**
 * A leaving thread's idle connection waits this long for one more request before it is closed
 * (Connection.closeAfterRequest): a web server's idle kept connection, or a new one whose first
 * request is on its way.
 */
const DRAIN_IDLE_MS = 5_000

/** What the thread's entry gives the ThreadPool: its scheduler, and the way to a running request. */
export interface ThreadPoolLinks {
  /** Runs the task on this thread (worker/scheduler.ts submit). */
  readonly submit: (task: WorkerTask) => void
  /** BODY, ACK, ABORT for a request of this thread (what the channel would deliver). */
  readonly toRequest: (msg: MainMessage) => void
  /** Shared with the main thread (HELLO): what each request is, for its log lines. */
  readonly requestTexts: Uint8Array
  /** This thread's counts and the pool-wide active threads (common/accept-counters.ts). */
  readonly counts: Float64Array
  readonly poolWords: Int32Array
  /** pm.max_requests reached (with this thread's jitter): the thread leaves after this request. */
  readonly onLastRequest: () => void
  /** To the main thread (STATUS, OVER_HEAP). */
  readonly tell: (msg: AcceptMessage) => void
  /** The heap in use after the last request (worker/scheduler.ts, with pm.heap_soft_limit). */
  readonly heapUsed: Float64Array
}

export class ThreadPool {
  readonly config: PoolConfig
  readonly #links: ThreadPoolLinks
  readonly #requests = new IdMap<PoolRequest>(256)
  /** What RequestState takes for its channel: its messages come back to the server on this thread. */
  readonly port: MessagePort
  #nextId = 1
  readonly #texts: RequestTextWriter
  /** Requests of this thread not settled yet. */
  #running = 0
  /** Messages the requests posted (port) that have not reached the server yet. */
  #queued = 0
  #overHeap = false
  /** pm.max_requests plus this thread's jitter; Infinity: no limit. */
  readonly #maxRequests: number

  constructor (config: PoolConfig, links: ThreadPoolLinks) {
    this.config = config
    this.#links = links
    this.#texts = new RequestTextWriter(links.requestTexts)
    this.#maxRequests = threadMaxRequests(config.pm)
    // sameThread: the sender then passes views rather than copies made to be moved (web-response.ts).
    const sink = {
      sameThread: true,
      postMessage: (m: WorkerMessage): void => {
        this.#queued++
        queueMicrotask(() => {
          this.#queued--
          this.#onMessage(m)
        })
      }
    }
    this.port = sink as unknown as MessagePort
  }

  /** Pool.dispatch: the request runs here. */
  dispatch (req: PoolRequest, task: TaskFields): void {
    const id = this.#nextId++
    req.poolId = id
    req.threadId = threadId
    req.startedAtMs = performance.now()
    this.#requests.set(id, req)
    bump(this.#links.counts, ACCEPTED)
    if (this.#running++ === 0) threadBusy(this.#links.poolWords, this.#links.counts)
    this.#texts.write(id, req.method, req.uri, task.script)
    const full: WorkerTask = { ...task, id, claim: -1 }
    queueMicrotask(() => { this.#links.submit(full) })
    if (id === this.#maxRequests) this.#links.onLastRequest()
  }

  /** Pool.send: BODY, ACK and ABORT for a request running here. */
  send (_req: PoolRequest, msg: MainMessage): void {
    queueMicrotask(() => { this.#links.toRequest(msg) })
  }

  readonly #statusPages = new Map<number, (page: OwnPage) => void>()
  #statusSeq = 0

  /** The status page, from the main thread, which has the pool's figures. */
  async remoteStatus (query: string, isHead: boolean): Promise<OwnPage> {
    const seq = ++this.#statusSeq
    return await new Promise<OwnPage>((resolve) => {
      this.#statusPages.set(seq, resolve)
      this.#links.tell({ t: Msg.STATUS, seq, query, isHead })
    })
  }

  /** The main thread's answer to remoteStatus. */
  onStatusPage (msg: StatusPageMessage): void {
    const resolve = this.#statusPages.get(msg.seq)
    this.#statusPages.delete(msg.seq)
    resolve?.({ head: msg.head, body: msg.body })
  }

  /** This thread's counts and the pool-wide words (common/accept-counters.ts). */
  get counts (): Float64Array { return this.#links.counts }
  get poolWords (): Int32Array { return this.#links.poolWords }

  /** The main thread found request `id` past request_terminate_timeout: it gets 504 now. */
  timedOut (id: number): void {
    this.#requests.get(id)?.onTimedOut()
  }

  /** The pool's own ping and status pages count as accepted requests (php's accepted conn). */
  countAnswered (): void {
    bump(this.#links.counts, ACCEPTED)
  }

  /**
   * The scheduler's outcome of a task (worker/scheduler.ts Deliver). It reaches the server after
   * the messages the request posted before it: at once when none is on its way (a response in the
   * result: the usual small request), else behind them.
   */
  deliver (id: number, result: WorkerResult | null, failure: unknown): void {
    if (this.#queued === 0) this.#settle(id, result, failure)
    else queueMicrotask(() => { this.#settle(id, result, failure) })
  }

  #settle (id: number, result: WorkerResult | null, failure: unknown): void {
    const req = this.#requests.get(id)
    if (req === undefined) return
    this.#requests.delete(id)
    const counts = this.#links.counts
    bump(counts, COMPLETED)
    counts[LAST_DURATION_MS] = performance.now() - req.startedAtMs
    counts[LAST_CPU_US] = result?.usage === undefined ? -1 : result.usage.cpuUserUs + result.usage.cpuSystemUs
    counts[LAST_MEMORY] = result?.usage === undefined ? -1 : result.usage.heapBytes
    counts[LAST_ID] = id
    if (--this.#running === 0) threadIdle(this.#links.poolWords, counts)
    // pm.heap_soft_limit: the main thread decides (pool.ts #checkHeap), once.
    const softLimit = this.config.heapSoftLimitBytes
    if (softLimit > 0 && !this.#overHeap && (this.#links.heapUsed[0] ?? 0) > softLimit) {
      this.#overHeap = true
      this.#links.tell({ t: Msg.OVER_HEAP })
    }
    if (failure === null) req.onSettled(result, null)
    else req.onSettled(null, new FpmError('FPM_ERR_WORKER_DIED', `thread ${threadId} failed to run the request: ${(failure as Error).message}`))
  }

  #onMessage (m: WorkerMessage): void {
    if (m.t === Msg.RESULT || m.t === Msg.FAULT) return
    const req = this.#requests.get(m.id)
    if (req !== undefined) toPoolRequest(req, m)
  }
}

/**
 * How a pm.accept = threads thread leaves (pm.max_requests, or the main thread's STOP): it stops
 * accepting at once (the other threads take the new connections from the shared queue), tells the
 * main thread (which starts its replacement), finishes what its connections bring until each is
 * idle, and says LEFT: the main thread then terminates it. Never twice.
 */
export function leaver (listener: () => Listener | null, tell: (msg: AcceptMessage) => void): (why: LeavingMessage['why']) => void {
  let leaving = false
  return (why) => {
    if (leaving) return
    leaving = true
    tell({ t: Msg.LEAVING, why })
    const current = listener()
    void (current === null ? Promise.resolve() : current.drain(DRAIN_IDLE_MS)).then(() => { tell({ t: Msg.LEFT }) })
  }
}

/**
 * Connections that arrive together land on the thread that wakes first: libuv accepts all those
 * waiting in one go, and the other threads, woken with it, find none left (16 kept connections of a
 * load generator: 2:1 to 6:1 between two threads). A thread that holds more than its share of the
 * pool's connections while another thread is idle (so in epoll_wait, woken by the same connection
 * and about to accept) pauses BALANCE_PAUSE_MS after an accept, so that the other takes the next
 * ones: libuv's UV_TCP_SINGLE_ACCEPT yields the same way between processes. Only during a burst
 * and only above the share: a lone connection is never delayed.
 */
export class AcceptBalance {
  readonly #active: Int32Array
  readonly #counts: Float64Array
  readonly #threads: number
  readonly #pause = new Int32Array(new SharedArrayBuffer(4))

  constructor (active: Int32Array, counts: Float64Array, threads: number) {
    this.#active = active
    this.#counts = counts
    this.#threads = threads
  }

  accepted (): void {
    const total = connectionOpened(this.#active, this.#counts)
    const mine = this.#counts[CONNECTIONS] ?? 0
    if (mine > Math.ceil(total / this.#threads) && activeThreads(this.#active) < this.#threads) {
      Atomics.wait(this.#pause, 0, 0, BALANCE_PAUSE_MS)
    }
  }

  closed (): void {
    connectionsClosed(this.#active, this.#counts)
  }
}

/** Serves the pool's connections on this thread, on its own copy of the socket (worker/socket-copy.ts). */
export async function serveOnThread (handle: object, pool: ThreadPool, log: Logger, accessLog: AccessLog | null): Promise<Listener> {
  const listener = new Listener(pool.config, {
    pool: pool as unknown as Pool,
    resolver: new ScriptResolver(pool.config),
    log,
    accessLog,
    statusPage: async (query, isHead) => await pool.remoteStatus(query, isHead),
    sameThread: true,
    acceptBalance: new AcceptBalance(pool.poolWords, pool.counts, pool.config.pm.maxChildren)
  })
  await listener.adopt(handle)
  return listener
}

