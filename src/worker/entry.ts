// The module piscina loads (the pool's `filename`): runs in every worker thread of a pool.
// At load it opens the thread's channel (a MessageChannel whose port2 goes to the main thread in a
// HELLO message on parentPort, before piscina's READY). Requests arrive on that channel in TASKS
// batches, not as piscina tasks: piscina's one message and one Atomics wake-up per task (and its
// result) cost more main-thread time than the request itself (node-runtime.md §4); a batch costs
// one message per turn of the main event loop, whatever it holds. Results go back the same way,
// batched per turn of this thread's loop. piscina starts and ends the thread (warmUp). BODY, ACK
// and ABORT go to the request with that id. Each task is one FastCGI request (handler-context.ts).
// Imports only common/ and worker/ so that a thread starts light.

import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads'
import { Msg, taskAt } from '../common/messages.ts'
import type { AcceptReply, HelloMessage, MainMessage, ResultMessage, WorkerData, WorkerResult, WorkerTask } from '../common/messages.ts'
import { RequestState, serializeError } from './handler-context.ts'
import { Scheduler } from './scheduler.ts'
import { captureConsole } from './console-capture.ts'
import { createRequestTexts } from '../common/request-texts.ts'
import { createThreadCounts } from '../common/accept-counters.ts'
import { IdMap } from '../common/id-map.ts'
import { installFaultHandlers, runInRequest } from './faults.ts'

/** ABORTs for ids not (yet) running here (the main thread may abort a request whose task it has not
 *  flushed yet); the few most recent ones are remembered. */
const EARLY_ABORTS_MAX = 64

const data = workerData as WorkerData | undefined
const poolEnv: Readonly<Record<string, string>> = data?.env ?? {}
// pm.accept = threads: this thread serves its own connections (thread-server.ts), and its requests
// never come from or go back to the main thread.
let threadPool: import('./thread-server.ts').ThreadPool | null = null
/** pm.accept = threads: what the main thread's STOP and REOPEN do (set once the thread serves). */
let onStop: () => void = () => {}
let onReopen: () => void = () => {}
const scheduler = new Scheduler(Math.max(1, data?.threadConcurrency ?? 1), runTask, (id, result, failure, serviceMs) => {
  if (threadPool === null) deliverResult(id, result, failure, serviceMs)
  else threadPool.deliver(id, result, failure)
}, { measureHeap: data?.measureHeap === true, measureUsage: data?.measureUsage })
const active = new IdMap<RequestState>(64)
const earlyAborts = new Map<number, string>()

const { port1, port2 } = new MessageChannel()
port1.on('message', onMainMessage)
// The channel must not keep the thread alive (piscina decides that), but must keep delivering.
port1.unref()
const requestTexts = data?.accept === undefined ? null : createRequestTexts()
const acceptCounts = data?.accept === undefined ? null : createThreadCounts()
const hello: HelloMessage = {
  t: Msg.HELLO, threadId, port: port2, runningIds: scheduler.slots.ids, runningStartedAtMs: scheduler.slots.startedAtMs,
  heapUsed: scheduler.slots.heapUsed, claims: scheduler.slots.claims, requestTexts, acceptCounts
}
parentPort?.postMessage(hello, [port2])
captureConsole(port1, threadId)
installFaultHandlers(port1)
if (data?.accept !== undefined) void serveConnections(data.accept)

/** pm.accept = threads: loaded only then, so that a thread of the default mode starts light. */
async function serveConnections (accept: NonNullable<WorkerData['accept']>): Promise<void> {
  // A descriptor of the socket of this thread's own: the supervisor's (one for each initial thread
  // under the supervisor), else copied, which takes a process start (~30 ms) while the server code loads.
  const { claimThreadFd, copyListeningSocket, openThreadFd } = await import('./socket-copy.ts')
  const ownFd = claimThreadFd(accept.threadFds)
  const copy = ownFd === -1 ? copyListeningSocket(accept.fd) : Promise.resolve().then(() => openThreadFd(ownFd))
  copy.catch(() => {}) // awaited below, where a failure ends the thread
  const { ThreadPool, leaver, serveOnThread } = await import('./thread-server.ts')
  const { threadLogger } = await import('./thread-logger.ts')
  // The access log's code (and its file's) only where the pool has one: every module a thread
  // loads stays in its memory (bench:startup, idle RSS per thread).
  const hasAccessLog = accept.config.access.log !== null && accept.config.access.log !== ''
  const accessLogModule = hasAccessLog ? await import('../log/access-log.ts') : null
  const reopenModule = hasAccessLog ? await import('../log/reopen-signal.ts') : null
  const log = threadLogger(port1, accept.logLevel)
  let listener: import('../server/listener.ts').Listener | null = null
  const leave = leaver(() => listener, (msg) => { port1.postMessage(msg) })
  threadPool = new ThreadPool(accept.config, {
    submit: (task) => { scheduler.submit(task) },
    toRequest: onMainMessage,
    requestTexts: requestTexts!,
    counts: acceptCounts!,
    poolWords: accept.poolWords,
    onLastRequest: () => { leave('recycle') },
    tell: (msg) => { port1.postMessage(msg) },
    heapUsed: scheduler.slots.heapUsed
  })
  onStop = () => { leave('asked') }
  onReopen = () => { reopenModule?.reopenLogs(log, { quiet: true }) }
  try {
    listener = await serveOnThread(await copy, threadPool, log, accessLogModule?.AccessLog.open(accept.config, log) ?? null)
    log.debug(ownFd === -1 ? `thread ${threadId} accepts on a copy of the listening socket` : `thread ${threadId} accepts on the supervisor's descriptor ${ownFd}`)
    port1.postMessage({ t: Msg.ACCEPTING })
  } catch (err) {
    // Ends the thread: the pool counts a thread that failed to start and asks for another.
    log.error({ err }, `thread ${threadId} cannot accept on ${accept.config.listen.address}: ${(err as Error).message}`)
    process.exit(1)
  }
}

function onMainMessage (msg: MainMessage | AcceptReply): void {
  if (msg.t === Msg.STOP) {
    onStop()
    return
  }
  if (msg.t === Msg.STATUS_PAGE) {
    threadPool?.onStatusPage(msg)
    return
  }
  if (msg.t === Msg.REOPEN) {
    onReopen()
    return
  }
  if (msg.t === Msg.TASKS) {
    // Beyond the thread's concurrency, requests wait in the scheduler.
    for (let i = 0; i < msg.ids.length; i++) scheduler.submit(taskAt(msg, i))
    return
  }
  // pm.accept = threads: the main thread saw this request run past request_terminate_timeout in the
  // shared slots; the server code here answers 504 (the abort below reaches the handler).
  if (threadPool !== null && msg.t === Msg.ABORT && msg.reason === 'request_terminate_timeout') threadPool.timedOut(msg.id)
  const state = active.get(msg.id)
  if (state === undefined) {
    if (msg.t === Msg.ABORT && !scheduler.dropWaiting(msg.id)) rememberAbort(msg.id, msg.reason)
    return
  }
  switch (msg.t) {
    case Msg.BODY: state.onBody(msg); break
    case Msg.ACK: state.onAck(msg.bytes); break
    case Msg.ABORT: state.abort(msg.reason); break
  }
}

function rememberAbort (id: number, reason: string): void {
  if (earlyAborts.size >= EARLY_ABORTS_MAX) {
    const oldest = earlyAborts.keys().next()
    if (oldest.done !== true) earlyAborts.delete(oldest.value)
  }
  earlyAborts.set(id, reason)
}

/**
 * A task's outcome, posted at once in a RESULT message: it cannot wait for others on this thread
 * (scheduler.ts says why). `failure`: node-fpm's own bug, not a handler error (those are in the
 * result); the request gets 502.
 */
function deliverResult (id: number, result: WorkerResult | null, failure: unknown, serviceMs: number): void {
  const msg: ResultMessage = {
    t: Msg.RESULT,
    id,
    head: result?.response?.head ?? null,
    body: result?.response?.body ?? null,
    error: result?.error ?? null,
    usage: result?.usage ?? null,
    failure: failure === null ? null : serializeError(failure),
    serviceMs
  }
  port1.postMessage(msg)
}

/** piscina's default task: never used for requests (they come in TASKS batches); kept so the module is a valid piscina task module. */
export default function unused (): null {
  return null
}

/**
 * piscina task `warmUp`: the pool's way of starting a thread (src/pool/pool.ts #spawn). It answers
 * at once; by then the thread has loaded this module, opened its channel and said READY.
 */
export function warmUp (): null {
  return null
}

/** Run in the request's async context (no closure per request, no extra async frame). */
function runState (state: RequestState): WorkerResult | Promise<WorkerResult> {
  return state.run()
}

/** Synchronous when the request is (RequestState.run): the scheduler then delivers its result at once. */
function runTask (task: WorkerTask): WorkerResult | Promise<WorkerResult> {
  const state = new RequestState(task, threadPool?.port ?? port1, poolEnv)
  active.set(task.id, state)
  if (earlyAborts.size > 0) {
    const reason = earlyAborts.get(task.id)
    if (reason !== undefined) {
      earlyAborts.delete(task.id)
      state.abort(reason)
    }
  }
  let outcome: WorkerResult | Promise<WorkerResult> | null = null
  try {
    // The request's async context: a fault raised by its timers, promises or listeners names it.
    outcome = runInRequest(state, runState)
    return outcome instanceof Promise ? outcome.finally(() => { active.delete(task.id) }) : outcome
  } finally {
    if (!(outcome instanceof Promise)) active.delete(task.id)
  }
}
