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
import type { HelloMessage, MainMessage, ResultMessage, WorkerData, WorkerResult, WorkerTask } from '../common/messages.ts'
import { RequestState, serializeError } from './handler-context.ts'
import { Scheduler } from './scheduler.ts'
import { captureConsole } from './console-capture.ts'
import { currentRequest, installFaultHandlers } from './faults.ts'

/** ABORTs for ids not (yet) running here (the main thread may abort a request whose task it has not
 *  flushed yet); the few most recent ones are remembered. */
const EARLY_ABORTS_MAX = 64

const data = workerData as WorkerData | undefined
const poolEnv: Readonly<Record<string, string>> = data?.env ?? {}
const scheduler = new Scheduler(Math.max(1, data?.threadConcurrency ?? 1), runTask, deliverResult, { measureHeap: data?.measureHeap === true, measureUsage: data?.measureUsage })
const active = new Map<number, RequestState>()
const earlyAborts = new Map<number, string>()

const { port1, port2 } = new MessageChannel()
port1.on('message', onMainMessage)
// The channel must not keep the thread alive (piscina decides that), but must keep delivering.
port1.unref()
const hello: HelloMessage = {
  t: Msg.HELLO, threadId, port: port2, runningIds: scheduler.slots.ids, runningStartedAtMs: scheduler.slots.startedAtMs,
  heapUsed: scheduler.slots.heapUsed, claims: scheduler.slots.claims
}
parentPort?.postMessage(hello, [port2])
captureConsole(port1, threadId)
installFaultHandlers(port1)

function onMainMessage (msg: MainMessage): void {
  if (msg.t === Msg.TASKS) {
    // Beyond the thread's concurrency, requests wait in the scheduler.
    for (let i = 0; i < msg.ids.length; i++) scheduler.submit(taskAt(msg, i))
    return
  }
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
function deliverResult (id: number, result: WorkerResult | null, failure: unknown): void {
  const msg: ResultMessage = {
    t: Msg.RESULT,
    id,
    head: result?.response?.head ?? null,
    body: result?.response?.body ?? null,
    error: result?.error ?? null,
    usage: result?.usage ?? null,
    failure: failure === null ? null : serializeError(failure)
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

async function runTask (task: WorkerTask): Promise<WorkerResult> {
  const state = new RequestState(task, port1, poolEnv)
  active.set(task.id, state)
  if (earlyAborts.size > 0) {
    const reason = earlyAborts.get(task.id)
    if (reason !== undefined) {
      earlyAborts.delete(task.id)
      state.abort(reason)
    }
  }
  try {
    // The request's async context: a fault raised by its timers, promises or listeners names it.
    return await currentRequest.run(state, async () => await state.run())
  } finally {
    active.delete(task.id)
  }
}
