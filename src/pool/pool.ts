// One pool = one piscina instance plus the per-thread channels its workers open (messages.ts), the
// pool's own queue of waiting requests (request-queue.ts), and the process manager (pm.ts) that
// decides how many threads run. It knows nothing of sockets or FastCGI: the server implements
// PoolRequest.
//
// Who decides what:
// - Requests wait here, never in piscina: piscina starts and ends threads, and the requests go to
//   a thread on its own channel, never through piscina.run(). The pool chooses the thread (a free
//   one, else, for a prefetchable request, a busy one that is churning through quick requests,
//   dispatch-policy.ts) and puts the task in that thread's outbox; the outboxes leave once per turn
//   of the event loop, one TASKS message per thread, and each result comes back in a RESULT
//   message as soon as its task ends. piscina's own per-task message, Atomics wake-up and result message cost more
//   main-thread time than a small request itself (node-runtime.md §4; waking a sleeping thread
//   costs the poster 15-25 µs here), so a batch pays one wake-up for all it holds. So
//   request.queue_max and request.queue_timeout bound the wait, and the start time of a request
//   excludes queueing (request_terminate_timeout and the slowlog need that). A thread that ends
//   fails (or dispatches again, #retryOrFail) the requests it still held (#onThreadExit).
// - Threads start and end only when the pool says so. piscina runs with minThreads 0 and
//   idleTimeout Infinity, so it never starts or reaps a thread on its own schedule. To start one,
//   the pool submits a `warmUp` task (worker/entry.ts) that the balancer refuses to place: piscina
//   then starts a thread because it has fewer than maxThreads (ThreadPool.runTask). The warm-up is
//   abortable, so it waits in piscina's skip queue, which runTask does not look at: requests
//   submitted meanwhile are still placed at once. When piscina offers the warm-up again (a thread
//   became ready or finished a task) the balancer places it anywhere: it does nothing. A thread
//   counts as ready a microtask after piscina's `workerCreate` (piscina lists it as ready by then).
//   To end a thread, the pool stops handing it requests and, once it has none, calls
//   worker.terminate() on it (found in piscina.threads); with minThreads 0 piscina does not
//   replace it.
// - pm.ts decides, on the 1 s heartbeat and when a request finds no free thread; this file carries
//   the decisions out.
// - pm.max_requests: a thread takes exactly its share (pm.max_requests plus its jitter), then no
//   more, and ends once idle, never in the middle of a request. Its replacement is started ahead
//   of that, when the thread's recent pace says it will reach its share within about two thread
//   start-up times (both measured), so that the replacement is ready when the thread stops taking
//   requests and capacity does not dip. From then on the thread no longer counts as one of the
//   pool's threads (its replacement does). The FastCGI connections are never touched: they belong
//   to the server, not to threads.
// - request_terminate_timeout counts from a request's start on its thread: the start time its
//   thread's scheduler publishes in shared memory (a request waiting in the pool's queue or in a
//   busy thread's scheduler is not running). A timer checks the running requests every
//   timeout / 20 (at least 10 ms, at most php's 1 s): a request is caught at most 5% (or 10 ms)
//   late, where php's 1 s granularity would let a 1 s timeout run for 2 s. At the timeout the
//   client gets 504 at once (server/exchange.ts onTimedOut), the event is logged with php's
//   wording, and the handler's request.signal is aborted; the thread takes no new request
//   meanwhile. A handler that ends within request_terminate_timeout_grace keeps its thread;
//   otherwise the thread is terminated (V8 stops even a busy loop) and its replacement is started
//   at once. Requests that waited in its scheduler and never started are dispatched again (as
//   when a thread dies); with pm.thread_concurrency > 1 the other requests running on it end with
//   it (502). With request_terminate_timeout_track_finished = no, a request whose response has
//   ended (ctx.finishRequest, or waitUntil work after the response) is no longer timed: php's
//   Finishing state.
// - A terminated thread that has not exited THREAD_EXIT_BOUND_MS later is stuck in a blocking
//   system call, which TerminateExecution cannot interrupt (node-runtime.md §2): it is reported,
//   never handed a request again (it is `gone`), its requests are answered or dispatched again
//   now rather than when the call returns, and its replacement (already started) keeps the
//   capacity: the pool then runs more threads than pm.max_children until it exits. piscina's
//   maxThreads leaves room for pm.max_children stuck threads besides the recycling replacements.
// - pm.heap_soft_limit: each thread publishes its heap in use in shared memory when a request ends
//   (worker/scheduler.ts); read when the result arrives, a thread over the limit takes no more
//   requests, ends once idle, and its replacement is started at once (#checkHeap).
// - An error no handler caught (worker/faults.ts has the policy): an unhandled rejection is logged
//   and the thread kept; an uncaught exception is logged and the thread replaced like the soft limit
//   (its requests finish; the one that got 500 for it gets request_terminate_timeout_grace to end).
// - A thread that exits without the pool asking (a crash, process.exit() in a handler, V8's heap
//   cap) is a death: logged (pm.heap_limit by name), replaced at once.

import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import { receiveMessageOnPort, type Worker } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { LAZY_UNDICI_EXEC_ARGV } from '../worker/undici-classes.ts'
import {
  Msg, TRANSFER_MIN_BYTES, resultOf, tasksMessage, type WorkerResult, type WorkerMessage, type MainMessage, type WorkerData,
  type SerializedError, type RequestUsage, type HelloMessage, type FaultMessage, type ResultMessage, type AcceptMessage, type AcceptReply, type StopMessage, type StatusPageMessage
} from '../common/messages.ts'
import { FpmError } from '../common/errors.ts'
import { IdMap } from '../common/id-map.ts'
import type { PoolConfig } from '../config/types.ts'
import { formatSize, formatTime } from '../config/values.ts'
import type { Logger } from '../log/logger.ts'
import { accessLogMeasuresUsage } from '../log/access-log.ts'
import { PM_START, initialThreads, maintain, onWaiting, threadMaxRequests, type PmDecision, type PmMemory, type PmSettings, type PmThread, type PmView } from './pm.ts'
import { PoolStats, type PoolGauges, type PoolStatsSnapshot } from './pool-stats.ts'
import { describeThread, lastRequestOf, type LastRequest, type ThreadSnapshot } from './thread-snapshot.ts'
import { RequestQueue } from './request-queue.ts'
import { Slowlog, type RunningRequest } from './slowlog.ts'
import { claimWord, newChannel, removeJob, type Channel, type Job, type Thread } from './pool-thread.ts'
import { readRequestText } from '../common/request-texts.ts'
import { statusPage } from '../status/status-page.ts'
import { onReopenLogs } from '../log/reopen-signal.ts'
import {
  ACCEPTED, BUSY, COMPLETED, CONNECTIONS, LAST_CPU_US, LAST_DURATION_MS, LAST_ID, LAST_MEMORY,
  connectionsClosed, createPoolWords, maxActiveThreads, threadIdle
} from '../common/accept-counters.ts'
import { PREFETCH_MAX_AGE_MS, freeThread, isQuick, nextServiceMs, prefetchThread } from './dispatch-policy.ts'
import { toPoolRequest, type PoolRequest, type TaskFields } from './pool-request.ts'

export type { PoolStatsSnapshot } from './pool-stats.ts'

/** pm.accept = threads: a request a thread runs (#runningOn). */
interface RunningOnThread {
  /** The thread's own id of the request. */
  readonly id: number
  /** Epoch ms. */
  readonly startedAtMs: number
  readonly what: ReturnType<typeof readRequestText>
}

/** The task that makes piscina start a thread. */
interface WarmUp { readonly warmUp: true }

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>
type BalancedTask = Parameters<LoadBalancer>[0]
type BalancedWorker = Parameters<LoadBalancer>[1][number]

const MAX_DISPATCH_ATTEMPTS = 3
/** The highest default V8 heap cap of a thread (threadHeapLimitMb): under 2 GiB. */
const DEFAULT_HEAP_LIMIT_MAX_MB = 2047
/** php's maintenance heartbeat (FPM_IDLE_SERVER_MAINTENANCE_HEARTBEAT). */
const HEARTBEAT_MS = 1000
/** Initial threads that boot at once (each costs ~30 ms of CPU, node-runtime.md): one per CPU, at least 2. */
const STARTUP_BATCH = Math.max(2, availableParallelism())
/**
 * A thread terminated for request_terminate_timeout that has not exited this long after is stuck
 * in a blocking system call. Measured exits take 2-10 ms (node-runtime.md §2): 2 s leaves ample
 * room for a busy machine or a large heap to tear down.
 */
const THREAD_EXIT_BOUND_MS = 2000

const NOT_RUN: WorkerResult = { response: null, error: null }
// entry.ts from the sources (tests, type stripping); from the build (dist/, what `node-fpm` runs)
// the thread's code bundled into a few files (dist/thread/, `npm run build:thread`): every module a
// thread loads costs it memory, and bundled it starts ~1.6 MiB lighter (bench:startup).
const workerEntry = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../worker/entry.ts' : '../thread/entry.js', import.meta.url))
const kQueueOptions = Piscina.queueOptionsSymbol

/** What the pool takes from [global]. */
export interface PoolOptions {
  /** emergency_restart_threshold and emergency_restart_interval: both > 0 turn it on. */
  readonly emergencyRestartThreshold?: number
  readonly emergencyRestartIntervalMs?: number
  /** pm.accept = threads: the pool's bound socket, of which each thread listens on a descriptor of its own. */
  readonly acceptFd?: number
  /** pm.accept = threads under the supervisor: descriptors of that socket the supervisor sent, one for each of the first threads. */
  readonly threadFds?: readonly number[]
}

export class Pool {
  readonly config: PoolConfig
  readonly log: Logger
  readonly #piscina: Piscina
  readonly #channels = new Map<number, Channel>()
  /** Every request the pool holds, queued or on a thread, by pool id (common/id-map.ts: not a Map, which would churn). */
  readonly #jobs = new IdMap<Job>(1024)
  readonly #queue = new RequestQueue<Job>()
  /** Threads by id, in start order (requests go to the oldest free thread first). */
  readonly #threads = new Map<number, Thread>()
  /** Threads piscina started for the pool that cannot take requests yet, with when they were asked for. */
  readonly #starting = new Map<Worker, number>()
  /** Recent time from asking for a thread to its being ready (ms). */
  #startupMs = 50
  /** Initial threads not asked for yet: they start as the first ones become ready (#startDeferred). */
  #deferredStarts = 0
  /** Ready threads that make the pool able to serve at start (`started`). */
  readonly #servingAt: number
  /** The initial threads have not all started yet (logged once they have). */
  #initialPending = true
  readonly #createdAtMs = performance.now()
  readonly #stats = new PoolStats()
  /** pm.accept = threads: removes the SIGUSR1 hook that reaches the threads' access logs. */
  #stopReopening: () => void = () => {}
  /** pm.accept = threads: the pool-wide words the threads share (common/accept-counters.ts). */
  readonly #poolWords = createPoolWords()
  /** pm.accept = threads: the counts of the threads that have ended. */
  readonly #acceptEnded = { accepted: 0, completed: 0 }
  /** WorkerData.measureUsage: shared with every thread of the pool. */
  readonly #measureUsage = new Int32Array(new SharedArrayBuffer(4))
  readonly #pm: PmSettings
  #pmMemory: PmMemory = PM_START
  /** piscina's maxThreads. */
  readonly #maxThreads: number
  /** pm.thread_concurrency: requests one thread runs at once. */
  readonly #concurrency: number
  /** pm.accept = threads: the threads accept and serve; no request passes through here. */
  readonly #threadsAccept: boolean
  #activeThreads = 0
  #nextId = 1
  #closed = false
  /** destroy(): the threads are being terminated; nothing is dispatched again. */
  #destroyed = false
  #closing: Promise<void> | null = null
  #whenEmpty: (() => void) | null = null
  /** The warm-up being handed to piscina.run() right now (the balancer is called synchronously). */
  #submitting: WarmUp | null = null
  /** #flushTasks is due at the end of this turn of the event loop. */
  #flushScheduled = false
  readonly #heartbeat: NodeJS.Timeout
  /** request_terminate_timeout's check (null: no timeout). */
  #timeoutTimer: NodeJS.Timeout | null = null
  /** #takeBack is due: a request waits in a busy thread's scheduler. */
  #takeBackTimer: NodeJS.Timeout | null = null
  /** The time a thread has taken per request lately (EWMA over the pool, ms); Infinity: not known yet. */
  #serviceMs = Infinity
  /** request_slowlog_timeout's check and traces (null: no slowlog). */
  readonly #slowlog: Slowlog | null
  /** Threads stuck in a blocking call after their terminate(): beyond pm.max_children until they exit. */
  #stuckThreads = 0
  #queueTimer: NodeJS.Timeout | null = null
  #queueTimerAtMs = 0
  /** The queue refused requests since it was last empty (one warning per episode and kind). */
  #queueFullEpisode = false
  #queueTimeoutEpisode = false
  #lastThreadsLine = ''
  readonly #emergencyThreshold: number
  readonly #emergencyIntervalMs: number
  /** When the last (up to emergency_restart_threshold) threads died, oldest first (php's last_faults ring). */
  #deaths: number[] = []
  #onStarted: (() => void) | null = null
  /**
   * Resolves once the pool can serve: the first STARTUP_BATCH of the threads it starts with (static:
   * pm.max_children, dynamic: pm.start_servers, ondemand: none) are ready, or every one of them is
   * ready or failed to start. The others are still starting. The server waits for it before it says
   * it is ready, as php-fpm forks its children (which then initialize) before it does.
   */
  readonly started: Promise<void>

  constructor (config: PoolConfig, log: Logger, opts: PoolOptions = {}) {
    this.config = config
    this.log = log
    // First: it creates the slowlog file, and a failure stops the start before any thread exists.
    this.#slowlog = Slowlog.start({ config, log, running: () => this.#runningRequests(), onSlow: () => { this.#stats.counters.slowRequests++ } })
    const threshold = opts.emergencyRestartThreshold ?? 0
    const intervalMs = opts.emergencyRestartIntervalMs ?? 0
    this.#emergencyThreshold = threshold > 0 && intervalMs > 0 ? threshold : 0
    this.#emergencyIntervalMs = intervalMs
    const pm = config.pm
    this.#concurrency = pm.threadConcurrency
    this.#threadsAccept = opts.acceptFd !== undefined
    this.#pm = pm
    this.#maxThreads = 3 * pm.maxChildren
    // What each request costs its thread (about 3 µs a request): the access log's %C and %M need it
    // from the start; the status page's last request cpu and memory from the first `full` view on
    // (threadsSnapshot), so that a pool whose page is only scraped for its counters does not pay it.
    if (accessLogMeasuresUsage(config.access)) this.#measureUsage[0] = 1
    const workerData: WorkerData = {
      poolName: config.name,
      env: config.env,
      phpValues: config.phpValues,
      phpAdminValues: config.phpAdminValues,
      threadConcurrency: pm.threadConcurrency,
      measureHeap: config.heapSoftLimitBytes > 0,
      measureUsage: this.#measureUsage,
      accept: opts.acceptFd === undefined ? undefined : { fd: opts.acceptFd, threadFds: threadFdTable(opts.threadFds ?? []), config, logLevel: threadLogLevel(log), poolWords: this.#poolWords }
    }
    this.#piscina = new Piscina({
      filename: workerEntry,
      // The pool starts and ends threads itself (see the top of this file).
      minThreads: 0,
      // Room for a replacement of every thread while the threads it replaces finish
      // (pm.max_requests), and for as many threads stuck in a blocking call (request_terminate_timeout).
      maxThreads: this.#maxThreads,
      idleTimeout: Infinity,
      // piscina only runs warm-ups (requests go on the threads' channels, see the top of this file).
      concurrentTasksPerWorker: 1,
      stricterFIFO: true,
      // 'async': an idle thread keeps its event loop running, so ctx.waitUntil() work and timers
      // left behind by a handler are not frozen in Atomics.wait (STYLE.md §8).
      atomics: 'async',
      workerData,
      env: workerEnv(config),
      // Flags of the process are inherited; without any, the threads load undici when they need it.
      execArgv: process.execArgv.length === 0 ? [...LAZY_UNDICI_EXEC_ARGV] : undefined,
      resourceLimits: { maxOldGenerationSizeMb: threadHeapLimitMb(config.heapLimitMb) },
      loadBalancer: (task, workers) => this.#balance(task, workers),
      recordTiming: false
    })
    this.#piscina.on('message', (msg: unknown) => { this.#onParentMessage(msg) })
    this.#piscina.on('workerCreate', (worker: { id: number }) => { this.#onThreadCreated(worker.id) })
    this.#piscina.on('workerDestroy', (worker: { id: number }) => {
      // Through terminate() or a failure: the exit event follows (then the id reads -1).
      const thread = this.#threads.get(worker.id)
      if (thread !== undefined) thread.gone = true
    })
    this.#piscina.on('error', (err: Error & { code?: unknown }) => {
      // A thread that died with no task: its exit line says why (#onThreadExit).
      if (err.code !== 'ERR_WORKER_OUT_OF_MEMORY') this.log.error({ err }, 'pool error')
    })
    this.started = new Promise<void>((resolve) => { this.#onStarted = resolve })
    // Threads boot a few at a time (as many as there are CPUs): all at once, each takes as long as
    // the whole batch on a small machine and the first request waits for all of them.
    const initial = initialThreads(this.#pm)
    this.#servingAt = Math.min(initial, STARTUP_BATCH)
    this.#deferredStarts = initial - this.#servingAt
    this.#spawn(this.#servingAt)
    this.#checkStarted()
    this.#heartbeat = setInterval(() => { this.#tick() }, HEARTBEAT_MS)
    // The main thread's listener keeps the process alive; with pm.accept = threads it has none, and
    // the pool's threads do not count (piscina unrefs them): the heartbeat does, until close.
    if (opts.acceptFd === undefined) this.#heartbeat.unref()
    else this.#stopReopening = onReopenLogs(() => { this.#toThreads({ t: Msg.REOPEN }) })
    const timeoutMs = config.request.terminateTimeoutMs
    if (timeoutMs > 0) this.#timeoutTimer = setInterval(() => { this.#checkTimeouts() }, timeoutCheckEveryMs(timeoutMs)).unref()
  }

  /** Counters and gauges, for the status page. */
  get stats (): PoolStatsSnapshot {
    const snapshot = this.#stats.snapshot(this.#gauges())
    if (!this.#threadsAccept) return snapshot
    // pm.accept = threads: the requests were counted by the threads (common/accept-counters.ts).
    let { accepted, completed } = this.#acceptEnded
    for (const channel of this.#channels.values()) {
      accepted += channel.acceptCounts?.[ACCEPTED] ?? 0
      completed += channel.acceptCounts?.[COMPLETED] ?? 0
    }
    return { ...snapshot, accepted: snapshot.accepted + accepted, completed: snapshot.completed + completed, maxActive: maxActiveThreads(this.#poolWords) }
  }

  /** Each thread with the request it runs or ran last: the status page's `full` view (thread-snapshot.ts). */
  threadsSnapshot (): ThreadSnapshot[] {
    this.#measureUsage[0] = 1
    const nowMs = performance.now()
    if (this.#threadsAccept) return [...this.#threads.values()].map((t) => this.#describeAcceptingThread(t, nowMs))
    return [...this.#threads.values()].map((t) => describeThread(t, this.#channels.get(t.id), nowMs))
  }

  /**
   * pm.accept = threads: what the thread's shared memory says: its requests taken, the ones it runs
   * and the last one it finished, described by the thread (common/request-texts.ts).
   */
  #describeAcceptingThread (t: Thread, nowMs: number): ThreadSnapshot {
    const channel = this.#channels.get(t.id)
    const served = channel?.acceptCounts?.[ACCEPTED] ?? 0
    const jobs = []
    for (const { id, startedAtMs, what } of this.#runningOn(t)) {
      if (what === null) continue
      jobs.push({ id, task: { script: what.script, params: uriParams(what.uri) }, req: { method: what.method, uri: what.uri, startedAtMs: startedAtMs - performance.timeOrigin }, responseEnded: false })
    }
    return describeThread({ id: t.id, startedAtMs: t.startedAtMs, served, jobs, last: this.#lastOnThread(channel) }, channel, nowMs)
  }

  /** pm.accept = threads: the thread's last finished request, from its counts and request texts (null: none, or its entry reused). */
  #lastOnThread (channel: Channel | undefined): LastRequest | null {
    const counts = channel?.acceptCounts
    const id = counts?.[LAST_ID] ?? 0
    if (counts == null || id === 0 || channel?.requestTexts == null) return null
    const what = readRequestText(channel.requestTexts, id)
    if (what === null) return null
    return {
      params: uriParams(what.uri),
      script: what.script,
      method: what.method,
      uri: what.uri,
      durationMs: counts[LAST_DURATION_MS] ?? 0,
      cpuUs: counts[LAST_CPU_US] ?? -1,
      memoryBytes: counts[LAST_MEMORY] ?? -1
    }
  }

  /** A request the server answered itself (status page, ping): php counts it in "accepted conn". */
  countAnswered (): void {
    this.#stats.counters.accepted++
  }

  get closed (): boolean { return this.#closed }

  /**
   * Runs `task` (its id is set here) for `req`: on a free thread now, or once one is free.
   * Never throws: failures and refusals arrive as req.onSettled(null, err).
   */
  dispatch (req: PoolRequest, task: TaskFields): void {
    const transferred = task.body !== null && task.body.byteLength >= TRANSFER_MIN_BYTES
    const job = this.#newJob(req, task, {
      // A moved body is gone with a thread that dies; a streamed one is tied to the connection's reading.
      prefetchable: !transferred && !task.bodyStreaming,
      attempt: 1,
      queuedAtMs: performance.now()
    })
    this.#stats.counters.accepted++
    if (this.#closed) {
      this.#refuse(job, 'FPM_ERR_POOL_CLOSED', 'the pool is closing')
      return
    }
    if (this.#queue.size === 0 && this.#place(job)) return
    // No free thread: ondemand may start one for it (php's accept event; the others wait for the heartbeat).
    if (this.#pm.mode === 'ondemand') {
      const view = this.#view()
      this.#apply(onWaiting(this.#pm, this.#pmMemory, { ...view, waiting: view.waiting + 1 }), 'accept')
    }
    // Waiting for a thread that is starting is not waiting for a busy one: request.queue_max
    // counts the requests beyond what the starting threads will take.
    const max = this.config.request.queueMax
    if (this.#queue.size >= max + this.#startingCount() * this.#concurrency) {
      this.#stats.counters.refusedQueueFull++
      if (!this.#queueFullEpisode) {
        this.#queueFullEpisode = true
        this.log.warn({ queueMax: max }, `request queue is full (request.queue_max = ${max}): requests get 503 until it has room`)
      }
      this.#refuse(job, 'FPM_ERR_QUEUE_FULL', `the request queue is full (request.queue_max = ${max})`)
      return
    }
    this.#enqueue(job, false)
  }

  /** Sends a message to the thread running `req` (queued until that thread's channel is known). */
  send (req: PoolRequest, msg: MainMessage, transfer?: ArrayBuffer[]): void {
    const job = this.#jobs.get(req.poolId)
    if (job?.req !== req) return
    if (msg.t === Msg.ABORT) job.aborted = true
    const thread = job.thread
    if (thread === null) {
      // Still waiting for a thread: BODY and ACK only ever answer the worker's own messages, and
      // an aborted request leaves the queue unrun.
      if (msg.t === Msg.ABORT && this.#queue.remove(job)) this.#settle(job, NOT_RUN, null)
      return
    }
    if (this.#threads.get(thread.id) !== thread) return // it died: the job is failed or dispatched again
    let channel = this.#channels.get(thread.id)
    if (channel === undefined) {
      channel = newChannel()
      this.#channels.set(thread.id, channel)
    }
    if (channel.outbox.length > 0) this.#flushChannel(channel)
    if (channel.port === null) channel.pending.push({ msg, transfer })
    else channel.port.postMessage(msg, transfer)
  }

  /** Stops accepting work; requests already accepted (queued ones too) finish, then the threads end. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async #close (): Promise<void> {
    this.#closed = true
    this.#stopReopening()
    if (this.#jobs.size > 0) await new Promise<void>((resolve) => { this.#whenEmpty = resolve })
    // pm.accept = threads: the heartbeat (a no-op once closed) keeps the process alive meanwhile.
    if (this.#threadsAccept) await this.#threadsLeft()
    clearInterval(this.#heartbeat)
    this.#clearQueueTimer()
    this.#clearTimeoutTimer()
    this.#slowlog?.close()
    this.#reportStuckAtExit()
    await this.#piscina.close()
  }

  /** pm.accept = threads, graceful close: every thread stops accepting, finishes its connections' requests and ends. */
  async #threadsLeft (): Promise<void> {
    const exits: Array<Promise<unknown>> = []
    for (const thread of this.#threads.values()) {
      if (thread.gone) continue
      exits.push(new Promise((resolve) => { thread.worker.once('exit', resolve) }))
      if (thread.leaving === null) this.#leave(thread, 'retire')
    }
    await Promise.all(exits)
  }

  /** Terminates every thread now (SIGTERM): waiting requests are refused, running ones fail. */
  async destroy (): Promise<void> {
    this.#closed = true
    this.#stopReopening()
    this.#destroyed = true
    clearInterval(this.#heartbeat)
    this.#clearQueueTimer()
    this.#clearTimeoutTimer()
    if (this.#takeBackTimer !== null) clearTimeout(this.#takeBackTimer)
    this.#slowlog?.close()
    for (const job of this.#queue.clear()) this.#refuse(job, 'FPM_ERR_POOL_CLOSED', 'the pool is closing')
    this.#reportStuckAtExit()
    await this.#piscina.destroy()
  }

  /** A thread stuck in a blocking call holds the process until the call returns (node-runtime.md §2). */
  #reportStuckAtExit (): void {
    if (this.#stuckThreads === 0) return
    const ids = [...this.#threads.values()].filter((t) => t.stuck).map((t) => t.id)
    this.log.error({ threads: ids }, `waiting for ${ids.length} thread(s) stuck in a blocking call (${ids.join(', ')}): the process cannot exit before ${ids.length === 1 ? 'it returns' : 'they return'}`)
  }

  // ---- requests ----

  #newJob (req: PoolRequest, task: TaskFields, from: { prefetchable: boolean, attempt: number, queuedAtMs: number }): Job {
    const id = this.#nextId++
    req.poolId = id
    req.threadId = 0
    req.startedAtMs = 0
    const job: Job = { id, req, task, ...from, thread: null, slots: null, claim: -1, aborted: false, responseEnded: false, timedOutAtMs: 0, graceTimer: null, abandoned: false, abandonTimer: null }
    this.#jobs.set(id, job)
    return job
  }

  /** Into the queue (at its head: a request that already had a thread), with its timeout. */
  #enqueue (job: Job, atHead: boolean): void {
    if (atHead) this.#queue.unshift(job)
    else this.#queue.push(job)
    this.#stats.queued(this.#queue.size)
    this.#armQueueTimer()
  }

  /** Hands `job` to a thread if one can take it now. */
  #place (job: Job): boolean {
    if (job.prefetchable && isQuick(this.#serviceMs) && this.#startingCount() === 0) {
      const awake = prefetchThread(this.#threads.values(), this.#concurrency, this.#jobs.size, true)
      if (awake !== null) {
        this.#submit(job, awake)
        return true
      }
    }
    const free = freeThread(this.#threads.values(), this.#concurrency)
    if (free !== null) {
      this.#submit(job, free)
      return true
    }
    if (!job.prefetchable || this.#startingCount() > 0) return false
    // ondemand starts a thread for a request that finds none free: it waits for that one.
    if (this.#pm.mode === 'ondemand' && this.#countedThreads() < this.#pm.maxChildren) return false
    const busy = prefetchThread(this.#threads.values(), this.#concurrency, this.#jobs.size, false)
    if (busy === null) return false
    this.#submit(job, busy)
    return true
  }

  /** Hands waiting requests to threads, in order, while threads can take them. */
  #pump (): void {
    for (let job = this.#queue.peek(); job !== undefined; job = this.#queue.peek()) {
      if (!this.#place(job)) break
      this.#queue.shift()
    }
    if (this.#queue.size === 0) {
      this.#queueFullEpisode = false
      this.#queueTimeoutEpisode = false
      this.#clearQueueTimer()
    }
  }

  #submit (job: Job, thread: Thread): void {
    const now = performance.now()
    job.thread = thread
    job.slots = this.#channels.get(thread.id)?.runningIds ?? null
    job.req.threadId = thread.id
    job.req.startedAtMs = now
    thread.jobs.push(job)
    if (thread.inflight++ === 0) this.#stats.active(++this.#activeThreads)
    thread.served++
    thread.lastActiveMs = now
    if (thread.maxRequests !== Infinity) this.#countTowardsMaxRequests(thread, now)
    const task = job.task
    let channel = this.#channels.get(thread.id)
    if (channel === undefined) {
      channel = newChannel()
      this.#channels.set(thread.id, channel)
    }
    const claim = job.prefetchable ? claimWord(channel, job.id) : -1
    job.claim = claim
    channel.outbox.push({ ...task, id: job.id, claim })
    if (thread.inflight > this.#concurrency && claim !== -1) this.#armTakeBack()
    if (task.body !== null && task.body.byteLength >= TRANSFER_MIN_BYTES) channel.outboxTransfer.push(task.body.buffer as ArrayBuffer)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#flushTasks)
    }
  }

  /**
   * Sends the tasks handed out in this turn of the event loop, one message per thread: every
   * request read from the sockets in one poll phase (and every one a result freed a thread for)
   * costs the thread one wake-up, not one each.
   */
  readonly #flushTasks = (): void => {
    this.#flushScheduled = false
    for (const channel of this.#channels.values()) {
      if (channel.outbox.length > 0) this.#flushChannel(channel)
    }
  }

  #flushChannel (channel: Channel): void {
    const msg: MainMessage = tasksMessage(channel.outbox)
    const transfer = channel.outboxTransfer.length > 0 ? channel.outboxTransfer : undefined
    channel.outbox = []
    channel.outboxTransfer = []
    if (channel.port === null) channel.pending.push({ msg, transfer })
    else channel.port.postMessage(msg, transfer)
  }

  /** `serviceMs`: how long it held its thread, as the thread measured it (ResultMessage; -1: it never ran). */
  #onResult (job: Job, result: WorkerResult, serviceMs: number): void {
    if (this.#jobs.get(job.id) !== job) return // answered already: its thread got stuck (#onExitOverdue)
    const thread = job.thread
    this.#stats.counters.completed++
    if (thread !== null && job.timedOutAtMs !== 0) {
      const ms = Math.round(performance.now() - job.timedOutAtMs)
      this.log.info({ thread: thread.id, script: job.task.script, uri: job.req.uri, afterMs: ms },
        `thread ${thread.id}, script '${job.task.script}' (request: "${job.req.method} ${job.req.uri}") ended ${ms} ms after its request.signal was aborted: the thread is kept`)
    }
    // Measured by the thread: a thread slow to wake, or a main thread slow to read the result (a busy
    // or throttled machine), does not make quick requests look slow and the pool spread them out.
    if (thread !== null && serviceMs >= 0) this.#serviceMs = nextServiceMs(this.#serviceMs, serviceMs)
    this.#settle(job, result, null)
    if (thread !== null) {
      this.#released(thread, job, result.usage ?? null)
      this.#checkHeap(thread)
    }
    this.#pump()
  }

  /**
   * pm.heap_soft_limit, when a request of `thread` has ended: over it, the thread takes no more
   * requests, ends once idle, and a new thread is started now. Not kept serving until its
   * replacement is ready, as pm.max_requests does: a leak that grows the heap by megabytes per
   * request would reach pm.heap_limit meanwhile. Requests wait in the pool's queue for the start-up
   * of the new thread (tens of ms) when no other thread is free.
   */
  #checkHeap (thread: Thread): void {
    const limit = this.config.heapSoftLimitBytes
    if (limit <= 0 || thread.leaving !== null || thread.gone) return
    const used = this.#channels.get(thread.id)?.heapUsed?.[0] ?? 0
    if (used <= limit) return
    this.log.info({ thread: thread.id, heapUsed: used, heapSoftLimit: limit, requests: thread.served },
      `thread ${thread.id} has ${formatMiB(used)} of heap in use after a request, over pm.heap_soft_limit (${formatSize(limit)}): ` +
      'it takes no more requests and a new thread replaces it')
    this.#replaceNow(thread, 'heap')
  }

  /** Takes no more requests, ends once idle; its replacement is started now (unless already asked for). */
  #replaceNow (thread: Thread, why: 'heap' | 'fault'): void {
    if (!thread.due && !this.#closed) {
      thread.due = true
      this.#spawn(1)
    }
    this.#leave(thread, why)
  }

  #onFailure (job: Job, err: Error): void {
    const thread = job.thread
    // Once the current callback is done: a thread that exited is out of #threads by then (#onThreadExit goes on
    // after failing its jobs), so a request dispatched again cannot land on it.
    setImmediate(() => {
      if (this.#jobs.get(job.id) !== job) return // answered already: its thread got stuck (#onExitOverdue)
      if (thread !== null && this.#threads.get(thread.id) === thread) this.#released(thread, job)
      this.#jobs.delete(job.id)
      this.#retryOrFail(job, thread, this.#failureOf(job, thread, err))
    })
  }

  /** A request whose thread died (or is stuck): dispatched again if it never started there, else failed with `err`. */
  #retryOrFail (job: Job, thread: Thread | null, err: Error): void {
    if (this.#neverStarted(job) && job.prefetchable && job.attempt < MAX_DISPATCH_ATTEMPTS && !this.#destroyed) {
      if (job.aborted) {
        this.#settle(job, NOT_RUN, null)
        return
      }
      // It was waiting in the scheduler of a thread that died because of another request:
      // it never ran, so it runs elsewhere (exactly once), ahead of the requests queued after it.
      this.log.debug({ thread: thread?.id, attempt: job.attempt }, 'request was waiting on a thread that died: dispatched again')
      const again = this.#newJob(job.req, job.task, { prefetchable: true, attempt: job.attempt + 1, queuedAtMs: job.queuedAtMs })
      this.#enqueue(again, true)
      this.#pump()
      this.#keepAThreadForTheQueue()
      return
    }
    this.#settle(job, null, err)
    this.#pump()
  }

  /** What a request that ran on a thread that ended is told. */
  #failureOf (job: Job, thread: Thread | null, err: Error & { code?: unknown }): Error {
    if (job.timedOutAtMs !== 0) {
      return new FpmError('FPM_ERR_REQUEST_TIMEOUT', `request_terminate_timeout: thread ${thread?.id ?? 0} was terminated`, { cause: err })
    }
    if (thread !== null && thread.terminatedAtMs !== 0) {
      return new FpmError('FPM_ERR_WORKER_DIED',
        `thread ${thread.id} was terminated because another request on it exceeded request_terminate_timeout (pm.thread_concurrency = ${this.#concurrency})`, { cause: err })
    }
    if (job.abandoned && thread !== null) {
      return new FpmError('FPM_ERR_WORKER_DIED',
        `thread ${thread.id} was terminated: the handler did not end within request_terminate_timeout_grace after an uncaught exception from its code (it got 500)`, { cause: err })
    }
    if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new FpmError('FPM_ERR_WORKER_DIED', `thread ${thread?.id ?? 0} exceeded ${this.#heapLimitText()}: V8 ended it (ERR_WORKER_OUT_OF_MEMORY)`, { cause: err })
    }
    return err
  }

  /** The heap cap of the pool's threads, for log lines. */
  #heapLimitText (): string {
    const mb = this.config.heapLimitMb
    return mb > 0 ? `pm.heap_limit (${formatSize(mb * 1024 * 1024)})` : `the default heap limit (${threadHeapLimitMb(0)}M; pm.heap_limit is not set)`
  }

  /** The thread died: was the job in one of its execution slots? (unknown slots: assume it ran) */
  #neverStarted (job: Job): boolean {
    if (job.slots === null) return false
    return !job.slots.includes(job.id)
  }

  #settle (job: Job, result: WorkerResult | null, err: Error | null): void {
    this.#jobs.delete(job.id)
    if (job.graceTimer !== null) {
      clearTimeout(job.graceTimer)
      job.graceTimer = null
    }
    if (job.abandonTimer !== null) {
      clearTimeout(job.abandonTimer)
      job.abandonTimer = null
    }
    job.req.onSettled(result, err)
    if (this.#jobs.size === 0 && this.#whenEmpty !== null) {
      const resolve = this.#whenEmpty
      this.#whenEmpty = null
      resolve()
    }
  }

  /** Answered by the pool itself (503); never reached a thread. Settles in a microtask, never inside dispatch(). */
  #refuse (job: Job, code: 'FPM_ERR_QUEUE_FULL' | 'FPM_ERR_QUEUE_TIMEOUT' | 'FPM_ERR_POOL_CLOSED', message: string): void {
    if (code === 'FPM_ERR_POOL_CLOSED') this.#stats.counters.refusedClosed++
    this.#jobs.delete(job.id)
    queueMicrotask(() => { this.#settle(job, null, new FpmError(code, message)) })
  }

  // ---- the queue's timeout ----

  #armQueueTimer (): void {
    const head = this.#queue.peek()
    if (head === undefined) return this.#clearQueueTimer()
    const atMs = head.queuedAtMs + this.config.request.queueTimeoutMs
    if (this.#queueTimer !== null && this.#queueTimerAtMs <= atMs) return
    this.#clearQueueTimer()
    this.#queueTimerAtMs = atMs
    this.#queueTimer = setTimeout(() => { this.#expireQueue() }, Math.max(0, Math.ceil(atMs - performance.now()))).unref()
  }

  #clearQueueTimer (): void {
    if (this.#queueTimer === null) return
    clearTimeout(this.#queueTimer)
    this.#queueTimer = null
  }

  #expireQueue (): void {
    this.#queueTimer = null
    const timeoutMs = this.config.request.queueTimeoutMs
    const now = performance.now()
    for (let head = this.#queue.peek(); head !== undefined && head.queuedAtMs + timeoutMs <= now; head = this.#queue.peek()) {
      this.#queue.shift()
      this.#stats.counters.refusedQueueTimeout++
      if (!this.#queueTimeoutEpisode) {
        this.#queueTimeoutEpisode = true
        this.log.warn({ queueTimeoutMs: timeoutMs, queued: this.#queue.size },
          `a request waited request.queue_timeout (${formatTime(timeoutMs)}) for a free thread: 503; consider raising pm.max_children`)
      }
      this.#refuse(head, 'FPM_ERR_QUEUE_TIMEOUT', `no thread was free within request.queue_timeout (${formatTime(timeoutMs)})`)
    }
    if (this.#queue.size === 0) this.#pump()
    else this.#armQueueTimer()
  }

  // ---- request_terminate_timeout (see the top of this file) ----

  #checkTimeouts (): void {
    const { terminateTimeoutMs: limitMs, terminateTimeoutTrackFinished: trackFinished } = this.config.request
    const now = performance.timeOrigin + performance.now()
    if (this.#threadsAccept) {
      this.#checkThreadTimeouts(limitMs, now)
      return
    }
    for (const thread of this.#threads.values()) {
      if (thread.inflight === 0 || thread.gone) continue
      const channel = this.#channels.get(thread.id)
      // A copy: answering a request that timed out may settle others of the thread.
      for (const job of thread.jobs.slice()) {
        if (job.timedOutAtMs !== 0 || (job.responseEnded && !trackFinished && !thread.faulted)) continue
        const since = this.#runningSince(job, channel)
        if (since !== null && now - since >= limitMs) this.#timeOut(thread, job, now - since)
        if (thread.terminatedAtMs !== 0) break // terminated at once (grace 0): the rest of its requests end with it
      }
    }
  }

  /**
   * pm.accept = threads: the requests a thread runs are in its shared slots only. One past the limit
   * is logged (php's line), and the thread, asked to, answers it 504 and aborts its handler; one
   * still running request_terminate_timeout_grace later (or at once, grace 0) ends with its thread,
   * whose connections close with it (the web server answers 502 to any other request on them).
   */
  #checkThreadTimeouts (limitMs: number, nowEpochMs: number): void {
    for (const thread of this.#threads.values()) {
      if (thread.gone) continue
      const running = [...this.#runningOn(thread)]
      for (const [id, timer] of thread.timedOut) {
        if (running.some((r) => r.id === id)) continue
        if (timer !== null) clearTimeout(timer)
        thread.timedOut.delete(id)
      }
      for (const r of running) {
        const elapsedMs = nowEpochMs - r.startedAtMs
        if (thread.timedOut.has(r.id) || elapsedMs < limitMs) continue
        this.#timeOutOnThread(thread, r, elapsedMs)
        if (thread.gone) break
      }
    }
  }

  #timeOutOnThread (thread: Thread, { id, what }: RunningOnThread, elapsedMs: number): void {
    const graceMs = this.config.request.terminateGraceMs
    const channel = this.#channels.get(thread.id)
    const script = what?.script ?? '?'
    const line = `script '${script}' (request: "${what?.method ?? '?'} ${what?.uri ?? '?'}")`
    this.#stats.counters.requestsTimedOut++
    // php: "[pool %s] child %d, script '%s' (request: \"%s %s\") execution timed out (%d.%06d sec), terminating"
    this.log.warn({ thread: thread.id, script, method: what?.method, uri: what?.uri, elapsedMs: Math.round(elapsedMs) },
      `thread ${thread.id}, ${line} execution timed out (${(elapsedMs / 1000).toFixed(6)} sec), ` +
      (graceMs === 0 ? 'terminating' : `aborting its request.signal, terminating in ${formatTime(graceMs)} unless it ends`))
    if (graceMs === 0) {
      thread.timedOut.set(id, null)
      this.#kill(thread)
      return
    }
    channel?.port?.postMessage({ t: Msg.ABORT, id, reason: 'request_terminate_timeout' } satisfies MainMessage)
    // It takes no new connection meanwhile, and leaves even if the request ends in its grace: its
    // kept connections may hold requests behind the one that timed out. Replaced now.
    if (thread.leaving === null) {
      this.#leave(thread, 'timeout')
      if (!this.#closed) this.#spawn(1)
    }
    thread.timedOut.set(id, setTimeout(() => {
      thread.timedOut.set(id, null)
      const ids = this.#channels.get(thread.id)?.runningIds
      if (this.#destroyed || thread.gone || ids == null || !ids.includes(id)) return
      this.log.warn({ thread: thread.id, script }, `thread ${thread.id}, ${line} still running ${formatTime(graceMs)} after its request.signal was aborted (request_terminate_timeout_grace), terminating`)
      this.#kill(thread)
    }, graceMs).unref())
  }

  /**
   * pm.accept = threads: the requests `thread` runs, from its shared execution slots (ids are the
   * thread's own), each with what the thread said of it (common/request-texts.ts; null: its entry
   * was reused since).
   */
  * #runningOn (thread: Thread): Generator<RunningOnThread> {
    const channel = this.#channels.get(thread.id)
    const ids = channel?.runningIds
    const startedAt = channel?.runningStartedAtMs
    if (channel === undefined || ids == null || startedAt == null) return
    for (let slot = 0; slot < ids.length; slot++) {
      const id = Atomics.load(ids, slot)
      if (id === 0) continue
      const what = channel.requestTexts === null ? null : readRequestText(channel.requestTexts, id)
      yield { id, startedAtMs: startedAt[slot] ?? 0, what }
    }
  }

  /**
   * pm.accept = threads: the requests running on threads, described, for the slowlog. A thread's own ids repeat across threads: the slowlog's key adds the thread id in the high bits.
   */
  * #runningOnThreads (): Generator<RunningRequest> {
    for (const thread of this.#threads.values()) {
      if (thread.gone) continue
      for (const { id, startedAtMs, what } of this.#runningOn(thread)) {
        if (what !== null) yield { id: thread.id * 2 ** 32 + id, threadId: thread.id, script: what.script, method: what.method, uri: what.uri, startedAtMs }
      }
    }
  }

  /** Epoch ms when `job` started on its thread; null: it waits in the thread's scheduler. */
  #runningSince (job: Job, channel: Channel | undefined): number | null {
    const ids = channel?.runningIds
    const startedAt = channel?.runningStartedAtMs
    // Slots unknown (no HELLO yet; not expected for a ready thread): count from the hand-over.
    if (ids == null || startedAt == null) return performance.timeOrigin + job.req.startedAtMs
    const slot = ids.indexOf(job.id)
    return slot === -1 ? null : startedAt[slot] ?? null
  }

  /** The requests running on threads (not Finishing: php's slowlog times the Running state), for the slowlog. */
  * #runningRequests (): Generator<RunningRequest> {
    if (this.#threadsAccept) {
      yield * this.#runningOnThreads()
      return
    }
    for (const thread of this.#threads.values()) {
      if (thread.inflight === 0 || thread.gone) continue
      const channel = this.#channels.get(thread.id)
      for (const job of thread.jobs) {
        const since = job.responseEnded ? null : this.#runningSince(job, channel)
        if (since !== null) yield { id: job.id, threadId: thread.id, script: job.task.script, method: job.req.method, uri: job.req.uri, startedAtMs: since }
      }
    }
  }

  #timeOut (thread: Thread, job: Job, elapsedMs: number): void {
    const graceMs = this.config.request.terminateGraceMs
    const req = job.req
    job.timedOutAtMs = performance.now()
    thread.timingOut++
    this.#stats.counters.requestsTimedOut++
    // php: "[pool %s] child %d, script '%s' (request: \"%s %s\") execution timed out (%d.%06d sec), terminating"
    this.log.warn({ thread: thread.id, script: job.task.script, method: req.method, uri: req.uri, elapsedMs: Math.round(elapsedMs) },
      `thread ${thread.id}, script '${job.task.script}' (request: "${req.method} ${req.uri}") execution timed out (${(elapsedMs / 1000).toFixed(6)} sec), ` +
      (graceMs === 0 ? 'terminating' : `aborting its request.signal, terminating in ${formatTime(graceMs)} unless it ends`))
    req.onTimedOut()
    if (graceMs === 0) {
      this.#kill(thread)
      return
    }
    this.send(req, { t: Msg.ABORT, id: job.id, reason: 'request_terminate_timeout' })
    job.graceTimer = setTimeout(() => { this.#graceOver(thread, job) }, graceMs).unref()
  }

  /** request_terminate_timeout_grace has passed since `job` was aborted. */
  #graceOver (thread: Thread, job: Job): void {
    job.graceTimer = null
    if (this.#destroyed || !thread.jobs.includes(job) || thread.gone || this.#threads.get(thread.id) !== thread) return
    const graceMs = this.config.request.terminateGraceMs
    this.log.warn({ thread: thread.id, script: job.task.script, method: job.req.method, uri: job.req.uri },
      `thread ${thread.id}, script '${job.task.script}' (request: "${job.req.method} ${job.req.uri}") still running ${formatTime(graceMs)} after its request.signal was aborted (request_terminate_timeout_grace), terminating`)
    this.#kill(thread)
  }

  /** Terminates `thread` for request_terminate_timeout and starts its replacement now, not at its exit (which may never come). */
  #kill (thread: Thread): void {
    if (thread.gone) return
    const replace = this.#counted(thread) && !this.#closed
    thread.terminatedAtMs = performance.now()
    this.#stats.counters.threadsTerminated++
    this.#terminate(thread)
    if (replace) this.#spawn(1)
    thread.exitTimer = setTimeout(() => { this.#onExitOverdue(thread) }, THREAD_EXIT_BOUND_MS).unref()
  }

  /** A terminated thread has not exited: it is stuck in a blocking system call (see the top of this file). */
  #onExitOverdue (thread: Thread): void {
    thread.exitTimer = null
    if (this.#destroyed || this.#threads.get(thread.id) !== thread) return
    thread.stuck = true
    this.#stuckThreads++
    this.#stats.counters.threadsStuck++
    const n = this.#stuckThreads
    this.log.error({ thread: thread.id, stuck: n, maxChildren: this.#pm.maxChildren },
      `thread ${thread.id} is stuck in a blocking call and cannot be terminated (${formatTime(THREAD_EXIT_BOUND_MS)} after terminate()): ` +
      `it gets no more requests and a new thread has taken its place; ${n} stuck thread(s) run on top of pm.max_children until ${n === 1 ? 'it returns' : 'they return'}`)
    // Its requests are answered now, not when the call returns: the one that timed out has its
    // 504, others running there fail (502), those waiting in its scheduler run elsewhere.
    for (const job of [...thread.jobs]) {
      this.#released(thread, job)
      this.#jobs.delete(job.id)
      const err = new FpmError('FPM_ERR_WORKER_DIED', `thread ${thread.id} is stuck in a blocking call after its terminate()`)
      this.#retryOrFail(job, thread, this.#failureOf(job, thread, err))
    }
    this.#pump()
    this.#keepAThreadForTheQueue()
  }

  #clearTimeoutTimer (): void {
    if (this.#timeoutTimer === null) return
    clearInterval(this.#timeoutTimer)
    this.#timeoutTimer = null
  }

  // ---- threads ----

  /** Asks piscina for `n` more threads (see the top of this file). */
  #spawn (n: number): void {
    if (n <= 0) return
    const known = new Set(this.#piscina.threads)
    for (let i = 0; i < n; i++) {
      const warmUp: WarmUp = { warmUp: true }
      // Abortable, so that it waits in piscina's skip queue, not in the queue runTask checks.
      const signal = new AbortController().signal
      this.#submitting = warmUp
      let started: Promise<unknown>
      try {
        started = this.#piscina.run({ [kQueueOptions]: warmUp }, { name: 'warmUp', signal })
      } finally {
        this.#submitting = null
      }
      // Rejected when the thread it ran on ended first, or the pool closed: nothing to do.
      started.catch(() => {})
    }
    // The threads piscina started (none when it already has maxThreads).
    const now = performance.now()
    let started = 0
    for (const worker of this.#piscina.threads) {
      if (known.has(worker)) continue
      started++
      this.#starting.set(worker, now)
      worker.on('error', (err: Error) => {
        // Emitted just before 'exit' when V8 ended the thread (ERR_WORKER_OUT_OF_MEMORY), or an error
        // escaped before worker/faults.ts handles them.
        const thread = [...this.#threads.values()].find((t) => t.worker === worker)
        if (thread !== undefined) thread.exitError = err
      })
      worker.once('exit', (code: number) => {
        // (its threadId reads -1 by now)
        const thread = [...this.#threads.values()].find((t) => t.worker === worker)
        if (thread !== undefined) this.#onThreadExit(thread, code)
        else this.#onStartFailed(worker, code)
      })
    }
    if (started < n && this.#piscina.threads.length >= this.#maxThreads) {
      this.log.error({ threads: this.#piscina.threads.length, stuck: this.#stuckThreads },
        `cannot start ${n - started} thread(s): the pool already has ${this.#piscina.threads.length} threads, ${this.#stuckThreads} of them stuck in a blocking call`)
    }
  }

  /** A thread ended before it was ready (php: "child failed to initialize"). Asked for again by the heartbeat, not at once. */
  #onStartFailed (worker: Worker, code: number): void {
    this.#starting.delete(worker)
    if (!this.#closed) this.log.error({ code }, `a thread failed to start (exit code ${code})`)
    this.#startDeferred()
    this.#checkStarted()
  }

  /** One more of the initial threads, now that one of those booting is ready or failed. */
  #startDeferred (): void {
    if (this.#deferredStarts === 0) return
    this.#deferredStarts--
    if (this.#closed) this.#deferredStarts = 0
    else this.#spawn(1)
  }

  #onThreadCreated (id: number): void {
    let worker: Worker | undefined
    for (const w of this.#starting.keys()) if (w.threadId === id) worker = w
    if (worker === undefined || this.#threads.has(id)) return
    const askedAt = this.#starting.get(worker) ?? 0
    const now = performance.now()
    this.#startupMs = 0.7 * this.#startupMs + 0.3 * (now - askedAt)
    const thread: Thread = {
      id,
      worker,
      startedAtMs: now,
      maxRequests: threadMaxRequests(this.config.pm),
      ready: false,
      jobs: [],
      inflight: 0,
      served: 0,
      lastActiveMs: now,
      lastDoneMs: -Infinity,
      lastHandedMs: NaN,
      handedEveryMs: NaN,
      due: false,
      leaving: null,
      restarting: false,
      faulted: false,
      gone: false,
      endedByPool: false,
      exitError: null,
      timingOut: 0,
      terminatedAtMs: 0,
      stuck: false,
      exitTimer: null,
      last: null,
      timedOut: new Map()
    }
    this.#threads.set(id, thread)
    this.#stats.counters.threadsStarted++
    // bootMs: when it was asked for is this line's time minus bootMs (on arrival for ondemand, not on a heartbeat).
    this.log.debug({ thread: id, bootMs: Math.round(now - askedAt) }, `thread ${id} started`)
    // piscina moves it to its ready list right after this event: hand it requests from then on.
    // pm.accept = threads: it is ready once it accepts (ACCEPTING), a copy of the socket later.
    if (!this.#threadsAccept) queueMicrotask(() => { this.#becameReady(thread) })
  }

  #becameReady (thread: Thread): void {
    this.#starting.delete(thread.worker)
    this.#startDeferred()
    if (thread.gone) { this.#checkStarted(); return }
    thread.ready = true
    this.#checkStarted()
    // A new thread is ready: one thread an emergency restart replaces can go.
    this.#retireRestarting(1)
    if (this.#closed && this.#queue.size === 0) return
    this.#pump()
  }

  // ---- emergency_restart_threshold / emergency_restart_interval ----

  /**
   * A thread of the pool died (a crash, process.exit() in a handler, V8's heap cap; not a
   * retirement, not a terminate for request_terminate_timeout). php counts its children's SIGSEGV
   * and SIGBUS, the deaths of a native crash; a thread has no such signal, and these are its
   * crashes. When emergency_restart_threshold of them happened within emergency_restart_interval,
   * every thread of this pool is replaced, gracefully: the other pools are not touched (they share
   * nothing with this one), and php's reload of everything has no use here.
   */
  #countDeath (): void {
    const threshold = this.#emergencyThreshold
    if (threshold === 0) return
    const now = performance.now()
    this.#deaths.push(now)
    if (this.#deaths.length > threshold) this.#deaths.shift()
    if (this.#deaths.length < threshold || now - (this.#deaths[0] as number) > this.#emergencyIntervalMs) return
    this.#deaths = []
    this.#stats.counters.emergencyRestarts++
    const ms = this.#emergencyIntervalMs
    const interval = ms % 1000 === 0 ? `${ms / 1000} sec` : `${ms} ms`
    let replaced = 0
    for (const t of this.#threads.values()) {
      if (!t.ready || t.gone || t.leaving !== null || t.restarting) continue
      t.restarting = true
      replaced++
      if (!t.due) {
        t.due = true
        this.#spawn(1)
      }
    }
    // php: "failed processes threshold (%d in %d sec) is reached, initiating reload"
    this.log.warn({ threshold, intervalMs: ms, threads: replaced },
      `failed threads threshold (${threshold} in ${interval}) is reached, initiating a restart of the pool's threads ` +
      `(${replaced} thread(s) replaced, each once a new thread is ready)`)
  }

  /** Up to `n` threads an emergency restart replaces leave (the oldest first); all of them when no thread is starting. */
  #retireRestarting (n: number): void {
    for (const t of this.#threads.values()) {
      if (n <= 0 && this.#startingCount() > 0) return
      if (!t.restarting || t.leaving !== null || t.gone) continue
      this.#leave(t, 'restart')
      n--
    }
  }

  #checkStarted (): void {
    if (this.#initialPending && this.#startingCount() === 0) {
      this.#initialPending = false
      const ready = this.#readyThreads()
      if (ready > 0) this.log.info(`${ready} initial threads ready in ${Math.round(performance.now() - this.#createdAtMs)} ms`)
    }
    if (this.#onStarted === null) return
    if (this.#startingCount() > 0 && this.#readyThreads() < this.#servingAt) return
    this.#onStarted()
    this.#onStarted = null
  }

  /**
   * pm.max_requests, at each request handed to `thread`: ask for its replacement once it is close
   * to its share (see the top of this file), stop handing it requests once it has its share.
   */
  #countTowardsMaxRequests (thread: Thread, now: number): void {
    if (!Number.isNaN(thread.lastHandedMs)) {
      const gap = now - thread.lastHandedMs
      thread.handedEveryMs = Number.isNaN(thread.handedEveryMs) ? gap : 0.8 * thread.handedEveryMs + 0.2 * gap
    }
    thread.lastHandedMs = now
    const left = thread.maxRequests - thread.served
    if (!thread.due && !this.#closed && (left <= 0 || left * thread.handedEveryMs <= 2 * this.#startupMs)) {
      thread.due = true
      this.#spawn(1)
    }
    if (left <= 0) this.#leave(thread, 'recycle')
  }

  /** Takes no more requests; ends as soon as it has none. */
  #leave (thread: Thread, why: NonNullable<Thread['leaving']>): void {
    thread.leaving = why
    if (this.#threadsAccept) {
      // Its requests are its own: it stops accepting, finishes them and says LEFT (#onAcceptMessage).
      this.#channels.get(thread.id)?.port?.postMessage({ t: Msg.STOP } satisfies StopMessage)
      return
    }
    if (thread.inflight === 0) this.#terminate(thread)
  }

  /** pm.accept = threads: to every thread of the pool. */
  #toThreads (msg: AcceptReply): void {
    for (const channel of this.#channels.values()) channel.port?.postMessage(msg)
  }

  /** pm.accept = threads: what a thread says of itself (common/messages.ts AcceptMessage). */
  #onAcceptMessage (m: AcceptMessage, threadId: number): void {
    const thread = this.#threads.get(threadId)
    if (thread === undefined || thread.gone) return
    switch (m.t) {
      case Msg.ACCEPTING:
        if (!thread.ready) this.#becameReady(thread)
        break
      case Msg.LEFT:
        this.#terminate(thread)
        break
      case Msg.OVER_HEAP:
        this.#checkHeap(thread)
        break
      case Msg.STATUS: {
        const page = statusPage(this, m.query, m.isHead)
        this.#channels.get(threadId)?.port?.postMessage({ t: Msg.STATUS_PAGE, seq: m.seq, head: page.head, body: page.body } satisfies StatusPageMessage)
        break
      }
      case Msg.LEAVING:
        // pm.max_requests: its replacement starts now, while it finishes what its connections bring.
        // (Leaving when asked: #leave has already marked it.)
        if (m.why !== 'recycle' || thread.leaving !== null) break
        thread.leaving = 'recycle'
        this.log.debug({ thread: thread.id }, `thread ${thread.id} reached pm.max_requests: it stops accepting and ends once its connections are idle`)
        if (!this.#closed) this.#spawn(1)
        break
    }
  }

  #terminate (thread: Thread): void {
    if (thread.gone) return
    thread.gone = true
    thread.endedByPool = true
    thread.worker.terminate().catch(() => {})
  }

  /** `job` of `thread` settled (`usage`: what it cost the thread, when measured). */
  #released (thread: Thread, job: Job, usage: RequestUsage | null = null): void {
    if (!removeJob(thread.jobs, job)) return
    if (job.timedOutAtMs !== 0) {
      thread.timingOut--
      if (job.graceTimer !== null) {
        clearTimeout(job.graceTimer)
        job.graceTimer = null
      }
    }
    thread.lastActiveMs = thread.lastDoneMs = performance.now()
    thread.last = lastRequestOf(job, thread.lastDoneMs, usage)
    this.#oneLess(thread)
  }

  /** `thread` holds one request less (ended, or taken back): idle, or left with abandoned ones only, a leaving thread ends. */
  #oneLess (thread: Thread): void {
    if (--thread.inflight === 0) {
      this.#activeThreads--
      if (thread.leaving !== null) this.#terminate(thread)
    } else if (thread.leaving === 'fault') {
      this.#endIfOnlyAbandoned(thread)
    }
  }

  /** A thread retired after an uncaught exception that runs only handlers that will never end: terminated. */
  #endIfOnlyAbandoned (thread: Thread): void {
    if (thread.gone || thread.leaving !== 'fault') return
    for (const job of thread.jobs) if (!job.abandoned) return
    this.log.info({ thread: thread.id },
      `thread ${thread.id}: the handler that got 500 after an uncaught exception did not end within request_terminate_timeout_grace ` +
      `(${formatTime(this.config.request.terminateGraceMs)}): terminating the thread`)
    this.#terminate(thread)
  }

  #onThreadExit (thread: Thread, code: number): void {
    // What it posted before it ended (results, response bytes) counts; its other requests fail,
    // or run elsewhere if they never started (#retryOrFail).
    this.#drainChannel(thread.id)
    const counts = this.#channels.get(thread.id)?.acceptCounts
    if (counts != null) {
      this.#acceptEnded.accepted += counts[ACCEPTED] ?? 0
      this.#acceptEnded.completed += counts[COMPLETED] ?? 0
      thread.served = counts[ACCEPTED] ?? 0
      // A thread that ended while running a request (terminated, crashed) never said it was idle,
      // nor closed its connections.
      threadIdle(this.#poolWords, counts)
      const open = counts[CONNECTIONS] ?? 0
      if (open > 0) connectionsClosed(this.#poolWords, counts, open)
    }
    if (thread.jobs.length > 0) {
      const err: Error = thread.exitError ?? new FpmError('FPM_ERR_WORKER_DIED', `thread ${thread.id} exited with code ${code}`)
      for (const job of [...thread.jobs]) this.#onFailure(job, err)
    }
    this.#starting.delete(thread.worker)
    this.#threads.delete(thread.id)
    this.#channels.delete(thread.id)
    if (thread.inflight > 0) this.#activeThreads--
    if (thread.exitTimer !== null) clearTimeout(thread.exitTimer)
    const wasDue = thread.due
    const seconds = ((performance.now() - thread.startedAtMs) / 1000).toFixed(6)
    if (thread.terminatedAtMs !== 0) {
      // Terminated for request_terminate_timeout: its replacement was started then.
      if (thread.stuck) {
        this.#stuckThreads--
        const after = ((performance.now() - thread.terminatedAtMs) / 1000).toFixed(6)
        this.log.warn({ thread: thread.id, code, stuck: this.#stuckThreads },
          `thread ${thread.id}, stuck in a blocking call, exited at last, ${after} seconds after it was terminated`)
      } else {
        this.log.info({ thread: thread.id, code }, `thread ${thread.id} exited on terminate() (request_terminate_timeout) after ${seconds} seconds from start`)
      }
    } else if (this.#threadsAccept && !thread.ready && !thread.endedByPool && !this.#closed) {
      // pm.accept = threads: it ended before it accepted (no copy of the socket; it logged why). Like
      // a thread that fails to start, asked for again by the heartbeat, not at once: a cause that
      // lasts (no process can be spawned) must not become a loop.
      this.log.error({ thread: thread.id, code }, `thread ${thread.id} ended before it could accept connections (exit code ${code})`)
      this.#startDeferred()
      this.#checkStarted()
    } else if (!thread.endedByPool && !this.#closed) {
      // A crash, process.exit() in a handler, an out-of-memory: replaced at once, as php does.
      this.#stats.counters.threadsDied++
      const err = thread.exitError
      if (err?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.#stats.counters.threadsOutOfMemory++
        this.log.warn({ thread: thread.id, code, heapLimitMb: this.config.heapLimitMb },
          `thread ${thread.id} exceeded ${this.#heapLimitText()}: V8 ended it (ERR_WORKER_OUT_OF_MEMORY) after ${seconds} seconds from start`)
      } else {
        this.log.warn({ thread: thread.id, code, err: err ?? undefined }, `thread ${thread.id} exited with code ${code} after ${seconds} seconds from start`)
      }
      if (!wasDue && thread.leaving !== 'retire') this.#spawn(1)
      this.#countDeath()
    } else if (thread.leaving === 'recycle') {
      this.#stats.counters.threadsRecycled++
      this.log.info({ thread: thread.id, requests: thread.served, threads: this.#countedThreads() },
        `thread ${thread.id} retired after ${thread.served} requests (pm.max_requests), ${seconds} seconds from start`)
    } else if (thread.leaving === 'heap') {
      this.#stats.counters.threadsOverHeapLimit++
      this.log.info({ thread: thread.id, requests: thread.served, threads: this.#countedThreads() },
        `thread ${thread.id} retired after ${thread.served} requests (pm.heap_soft_limit), ${seconds} seconds from start`)
    } else if (thread.leaving === 'fault') {
      this.log.info({ thread: thread.id, requests: thread.served, threads: this.#countedThreads() },
        `thread ${thread.id} retired after ${thread.served} requests (uncaught exception), ${seconds} seconds from start`)
    } else if (thread.leaving === 'timeout') {
      this.log.info({ thread: thread.id, requests: thread.served, threads: this.#countedThreads() },
        `thread ${thread.id} retired after ${thread.served} requests (its request passed request_terminate_timeout and then ended), ${seconds} seconds from start`)
    } else if (thread.leaving === 'restart') {
      this.log.info({ thread: thread.id, requests: thread.served, threads: this.#countedThreads() },
        `thread ${thread.id} retired after ${thread.served} requests (emergency restart), ${seconds} seconds from start`)
    } else if (thread.leaving === 'retire') {
      this.#stats.counters.threadsRetired++
      this.log.debug({ thread: thread.id }, `thread ${thread.id} has been retired by the process manager after ${seconds} seconds from start`)
    } else {
      this.log.debug({ thread: thread.id, code }, `thread ${thread.id} exited with code ${code}`)
    }
    this.#pump()
    this.#keepAThreadForTheQueue()
  }

  /** While closing (no heartbeat), requests still waiting need a thread: the last one may have died. */
  #keepAThreadForTheQueue (): void {
    if (this.#closed && !this.#destroyed && this.#queue.size > 0 && this.#countedThreads() === 0) this.#spawn(1)
  }

  #armTakeBack (): void {
    if (this.#takeBackTimer === null) this.#takeBackTimer = setTimeout(this.#takeBack, PREFETCH_MAX_AGE_MS).unref()
  }

  /**
   * Requests that have waited in a thread's scheduler PREFETCH_MAX_AGE_MS without starting (the
   * one before them is slow) come back to the pool's queue, at its head, in order: the first
   * thread that frees up takes them. The claim word decides: a request the thread started in the
   * meantime stays (worker/scheduler.ts).
   */
  readonly #takeBack = (): void => {
    this.#takeBackTimer = null
    if (this.#destroyed) return
    const nowMs = performance.now()
    const back: Job[] = []
    let waiting = false
    for (const thread of this.#threads.values()) {
      if (thread.inflight <= this.#concurrency) continue
      const claims = this.#channels.get(thread.id)?.claims
      if (claims == null) continue
      for (const job of thread.jobs) {
        if (job.claim === -1) continue
        if (nowMs - job.req.startedAtMs < PREFETCH_MAX_AGE_MS) {
          waiting = true
        } else if (Atomics.compareExchange(claims, job.claim, job.id, 0) === job.id) {
          back.push(job)
        }
      }
    }
    for (let i = back.length - 1; i >= 0; i--) {
      const job = back[i]!
      this.#detach(job)
      if (job.aborted) this.#settle(job, NOT_RUN, null)
      else this.#enqueue(job, true)
    }
    if (back.length > 0) {
      this.#stats.counters.takenBack += back.length
      this.log.debug({ requests: back.length }, `${back.length} request(s) waiting behind a slow one on a busy thread taken back to the queue`)
      this.#pump()
    }
    if (waiting) this.#armTakeBack()
  }

  /** Undoes #submit for a request its thread never started (#takeBack). */
  #detach (job: Job): void {
    const thread = job.thread
    if (thread === null) return
    removeJob(thread.jobs, job)
    thread.served--
    job.thread = null
    job.slots = null
    job.claim = -1
    job.req.threadId = 0
    job.req.startedAtMs = 0
    this.#oneLess(thread)
  }

  /**
   * piscina's load balancer, for warm-ups only (requests go on the threads' channels): none while
   * one is being submitted (piscina then starts a thread), any live thread when offered again.
   */
  #balance (task: BalancedTask, workers: BalancedWorker[]): BalancedWorker | null {
    const ticket = (task as unknown as Record<symbol, WarmUp | null | undefined>)[kQueueOptions]
    if (ticket == null || this.#submitting === ticket) return null
    // Never null here: piscina would start a thread per refusal (ThreadPool._onWorkerAvailable).
    // Not on a thread on its way out if there is another (a stuck one would hold it for good).
    let any: BalancedWorker | null = null
    let leaving: BalancedWorker | null = null
    for (const w of workers) {
      if (w.terminating || w.destroyed) continue
      const thread = this.#threads.get(w.id)
      if (thread === undefined) return w // most likely the thread it asked for, still starting
      if (thread.gone) leaving ??= w
      else any ??= w
    }
    return any ?? leaving
  }

  // ---- the process manager ----

  /** php's heartbeat: one maintenance pass per second. */
  #tick (): void {
    if (this.#closed) return
    this.#apply(maintain(this.#pm, this.#pmMemory, this.#view()), 'heartbeat')
    // A thread whose replacement was asked for, idle for a heartbeat (the load stopped short of
    // its pm.max_requests): it goes now rather than linger as a thread too many.
    // Threads an emergency restart replaces whose new threads did not all come (a failed start).
    if (this.#startingCount() === 0) this.#retireRestarting(0)
    const now = performance.now()
    for (const t of this.#threads.values()) {
      if (t.due && t.leaving === null && t.inflight === 0 && now - t.lastActiveMs >= HEARTBEAT_MS) this.#leave(t, t.restarting ? 'restart' : 'recycle')
    }
    this.#pump()
    const g = this.#gauges()
    const line = `threads: ${g.threads} (idle ${g.idle}, active ${g.active})`
    if (line !== this.#lastThreadsLine) {
      this.#lastThreadsLine = line
      this.log.debug({ ...g }, line)
    }
  }

  #apply (d: PmDecision, from: 'heartbeat' | 'accept'): void {
    this.#pmMemory = d.memory
    const max = this.#pm.maxChildren
    if (d.maxChildrenReached) {
      this.#stats.counters.maxChildrenReached++
      // php's two wordings: the heartbeat's (dynamic) and the accept path's (ondemand).
      this.log.warn({ maxChildren: max }, from === 'heartbeat'
        ? `server reached pm.max_children setting (${max}), consider raising it`
        : `server reached max_children setting (${max}), consider raising it`)
    }
    if (d.busy !== null) {
      this.log.warn(d.busy, `seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning ${d.busy.spawning} children, there are ${d.busy.idle} idle, and ${d.busy.total} total children`)
    }
    if (d.retire !== null) {
      const thread = this.#threads.get(d.retire)
      if (thread !== undefined && thread.inflight === 0 && thread.leaving === null && !thread.gone) this.#leave(thread, 'retire')
    }
    if (d.spawn > 0) {
      this.#spawn(d.spawn)
      this.log.debug({ spawned: d.spawn, spawnRate: d.memory.spawnRate }, `${d.spawn} thread(s) have been created dynamically`)
    }
  }

  /** What the process manager sees. */
  #view (): PmView {
    const threads: PmThread[] = []
    for (const t of this.#threads.values()) {
      if (!this.#counted(t) || !t.ready) continue
      threads.push({ id: t.id, idle: t.inflight === 0, startedAtMs: t.startedAtMs, lastActiveMs: t.lastActiveMs })
    }
    return { nowMs: performance.now(), threads, starting: this.#startingCount(), waiting: this.#queue.size }
  }

  /** Counted as one of the pool's threads: not leaving, not replaced (pm.max_requests), alive. */
  #counted (t: Thread): boolean {
    return t.leaving === null && !t.due && !t.gone
  }

  #readyThreads (): number {
    let ready = 0
    for (const t of this.#threads.values()) if (t.ready && !t.gone) ready++
    return ready
  }

  /** Threads asked for that cannot take requests yet. */
  #startingCount (): number {
    return this.#starting.size + this.#deferredStarts
  }

  #countedThreads (): number {
    let n = this.#startingCount()
    for (const t of this.#threads.values()) if (t.ready && this.#counted(t)) n++
    return n
  }

  #gauges (): PoolGauges {
    let idle = this.#startingCount()
    const starting = idle
    let active = 0
    let leaving = 0
    for (const t of this.#threads.values()) {
      if (!this.#counted(t)) {
        leaving++
        continue
      }
      if (!t.ready) continue
      if (this.#threadsAccept ? this.#channels.get(t.id)?.acceptCounts?.[BUSY] !== 1 : t.inflight === 0) idle++
      else active++
    }
    return { threads: idle + active, idle, active, starting, leaving, stuck: this.#stuckThreads, queued: this.#queue.size, queueMax: this.config.request.queueMax }
  }

  // ---- channels ----

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
      this.#onWorkerMessage(entry.message as WorkerMessage, threadId)
    }
  }

  #onParentMessage (msg: unknown): void {
    const hello = msg as HelloMessage
    if (typeof msg !== 'object' || msg === null || hello.t !== Msg.HELLO) return
    let channel = this.#channels.get(hello.threadId)
    if (channel === undefined) {
      channel = newChannel()
      this.#channels.set(hello.threadId, channel)
    }
    const port = hello.port
    channel.port = port
    channel.runningIds = hello.runningIds
    channel.runningStartedAtMs = hello.runningStartedAtMs
    channel.heapUsed = hello.heapUsed
    channel.claims = hello.claims
    channel.requestTexts = hello.requestTexts
    channel.acceptCounts = hello.acceptCounts
    const threadId = hello.threadId
    port.on('message', (m: WorkerMessage | AcceptMessage) => { this.#onWorkerMessage(m, threadId) })
    port.unref()
    for (const { msg: queued, transfer } of channel.pending) port.postMessage(queued, transfer)
    channel.pending.length = 0
  }

  #onWorkerMessage (m: WorkerMessage | AcceptMessage, threadId: number): void {
    if (m.t === Msg.LEAVING || m.t === Msg.LEFT || m.t === Msg.STATUS || m.t === Msg.ACCEPTING || m.t === Msg.OVER_HEAP) {
      this.#onAcceptMessage(m, threadId)
      return
    }
    if (m.t === Msg.RESULT) {
      this.#onResultMessage(m, threadId)
      return
    }
    if (m.t === Msg.FAULT) {
      this.#onFault(threadId, m)
      return
    }
    const job = this.#jobs.get(m.id)
    if (job === undefined) {
      if (m.t === Msg.LOG) this.#logWorker(m.level, m.msg, m.err, m.fields)
      return
    }
    // The response has ended: php's Finishing state (the status page, request_terminate_timeout_track_finished).
    if ((m.t === Msg.HEAD || m.t === Msg.CHUNK) && m.end) job.responseEnded = true
    toPoolRequest(job.req, m)
  }

  #onResultMessage (m: ResultMessage, threadId: number): void {
    const job = this.#jobs.get(m.id)
    if (job === undefined || job.thread?.id !== threadId) return // answered already (its thread got stuck)
    const failure = m.failure
    if (failure === null) {
      this.#onResult(job, resultOf(m), m.serviceMs)
    } else {
      const err = new FpmError('FPM_ERR_WORKER_DIED', `thread ${threadId} failed to run the request: ${failure.message}`)
      err.stack = failure.stack
      this.#onFailure(job, err)
    }
  }

  /** An error no code of the thread caught (worker/faults.ts has the policy). */
  #onFault (threadId: number, m: FaultMessage): void {
    const where = m.script === null ? '' : ` in script '${m.script}' (request: "${m.method ?? ''} ${m.uri ?? ''}")`
    const fields = { thread: threadId, script: m.script ?? undefined, method: m.method ?? undefined, uri: m.uri ?? undefined, err: m.err }
    if (m.kind === 'unhandledRejection') {
      this.#stats.counters.unhandledRejections++
      this.log.error(fields, `thread ${threadId}: unhandled promise rejection${where}: ${m.err.message}; the thread is kept`)
      return
    }
    this.#stats.counters.uncaughtExceptions++
    const thread = this.#threads.get(threadId)
    const retire = thread !== undefined && thread.leaving === null && !thread.gone
    this.log.error(fields, `thread ${threadId}: uncaught exception${where}: ${m.err.message}; ` +
      (m.answered ? 'its request got 500, ' : '') +
      (retire ? 'the thread takes no more requests and a new thread replaces it' : 'the thread is already on its way out'))
    if (thread === undefined) return
    thread.faulted = true
    if (retire) this.#replaceNow(thread, 'fault')
    // The request that got 500 was most likely waiting for the callback that threw, and may wait
    // forever: after the grace, it no longer keeps the thread (and its memory) alive.
    const job = this.#jobs.get(m.id)
    if (m.answered && job !== undefined && job.thread === thread && job.abandonTimer === null) {
      job.abandonTimer = setTimeout(() => {
        job.abandonTimer = null
        if (!thread.jobs.includes(job)) return
        job.abandoned = true
        this.#endIfOnlyAbandoned(thread)
      }, this.config.request.terminateGraceMs).unref()
    }
  }

  #logWorker (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err: SerializedError | null, fields?: Readonly<Record<string, unknown>>): void {
    this.log[level](err === null ? { ...fields } : { ...fields, err }, msg)
  }
}

/**
 * pm.accept = threads: the params the status page reads a request's "request uri" from (php: SCRIPT_NAME and
 * the query), made from the URI a thread described.
 */
function uriParams (uri: string): string[] {
  const q = uri.indexOf('?')
  return ['REQUEST_URI', uri, 'QUERY_STRING', q === -1 ? '' : uri.slice(q + 1)]
}

/** The level of the lines a pm.accept = threads thread sends (it logs through the main thread). */
function threadLogLevel (log: Logger): 'debug' | 'info' | 'warn' | 'error' {
  if (log.isLevelEnabled('debug')) return 'debug'
  if (log.isLevelEnabled('info')) return 'info'
  return log.isLevelEnabled('warn') ? 'warn' : 'error'
}

/**
 * A thread's V8 old-generation cap: pm.heap_limit, else V8's default for this machine (the same as
 * the main thread's, which --max-old-space-size sets) but at most DEFAULT_HEAP_LIMIT_MAX_MB: a V8
 * isolate allowed 2 GiB or more keeps about 1.7 MiB more memory resident (measured per idle thread
 * with Node 24), and a thread of a pool rarely needs that much heap.
 */
function threadHeapLimitMb (heapLimitMb: number): number {
  if (heapLimitMb > 0) return heapLimitMb
  const { heap_size_limit: totalBytes } = getHeapStatistics()
  // heap_size_limit adds the young generation to the old one: close enough for a ceiling.
  return Math.min(DEFAULT_HEAP_LIMIT_MAX_MB, Math.floor(totalBytes / (1024 * 1024)))
}

/** The environment of the pool's threads: php's clear_env (default yes) keeps only env[...]. */
function workerEnv (config: PoolConfig): Record<string, string> {
  const base: Record<string, string> = {}
  if (!config.clearEnv) {
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) base[k] = v
  }
  return Object.assign(base, config.env)
}

/** Bytes as MiB with one decimal: `41.3M`. */
function formatMiB (bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)}M`
}

/** How often request_terminate_timeout is checked: timeout / 20, at least 10 ms, at most php's 1 s heartbeat. */
export function timeoutCheckEveryMs (timeoutMs: number): number {
  return Math.min(HEARTBEAT_MS, Math.max(10, Math.floor(timeoutMs / 20)))
}

/**
 * The descriptors each starting thread can take as its own (worker/socket-copy.ts claimThreadFd),
 * in shared memory: word 0 counts those taken, the others are the descriptors. Each is taken once,
 * by whichever thread starts first; a thread that finds none left has the socket copied for it.
 */
function threadFdTable (fds: readonly number[]): Int32Array {
  const table = new Int32Array(new SharedArrayBuffer(4 * (1 + fds.length)))
  table.set(fds, 1)
  return table
}
