// Errors that no code caught, in a worker thread: a promise rejection nobody handled, an exception
// thrown from a callback (a timer, an event listener, a stream) outside any handler's await. Node's
// default ends the whole thread for both, which fails every request on it (pm.thread_concurrency > 1,
// prefetched ones) for what php treats as one script's error. node-fpm's policy:
//
// - unhandled rejection: logged (with the pool, the thread, and the script and request it came
//   from), counted, and the thread is kept. A promise nobody awaited does not leave the thread
//   halfway through anything: the code that made it went on. Cloudflare Workers does the same.
// - uncaught exception: logged and counted, and the thread is retired gracefully (the pool takes it
//   out of service and starts a replacement at once; the requests running on it finish). The throw
//   unwound a callback halfway, so module state (a connection pool, a cache) may be inconsistent:
//   php-fpm would end such a child, but not the other requests it serves. The request it came from,
//   if it has not answered yet, gets 500 now and its request.signal is aborted (php ends the script
//   with a 500): it was most likely waiting for that callback.
//
// The request is known through an AsyncLocalStorage that every request runs in: timers, promises and
// listeners created by a handler carry its context (about 0.3 µs per request).

import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks'
import type { MessagePort } from 'node:worker_threads'
import { Msg } from '../common/messages.ts'
import type { FaultMessage } from '../common/messages.ts'
import { serializeError } from './handler-context.ts'
import type { RequestState } from './handler-context.ts'

/** The request whose code is running (undefined outside any request). */
const currentRequest = new AsyncLocalStorage<RequestState>()

// The thread's context at start (no store): each request's context is made from it. currentRequest.run
// would copy the context of whatever called it (Node's frame is a Map: copied on entering, copied again
// on leaving), which is the previous request's when the scheduler runs in one of its continuations.
const threadScope = new AsyncResource('node-fpm:request')

/** `fn(state)` in a context of its own whose store is `state`: a fault raised by the timers, promises and listeners it creates names it. */
export function runInRequest<S extends RequestState, R> (state: S, fn: (state: S) => R): R {
  return threadScope.runInAsyncScope(enterRequest, null, state, fn) as R
}

function enterRequest<S extends RequestState, R> (state: S, fn: (state: S) => R): R {
  // left when runInAsyncScope restores its caller's context
  currentRequest.enterWith(state)
  return fn(state)
}

export function installFaultHandlers (port: MessagePort): void {
  process.on('unhandledRejection', (reason: unknown) => { report(port, 'unhandledRejection', reason) })
  // With --unhandled-rejections=strict a rejection arrives here (origin 'unhandledRejection'): the
  // operator asked for it to be treated as an exception.
  process.on('uncaughtException', (err: unknown) => { report(port, 'uncaughtException', err) })
}

function report (port: MessagePort, kind: FaultMessage['kind'], err: unknown): void {
  try {
    post(port, kind, err)
  } catch {
    // Never throw from these listeners: Node would end the thread after all.
  }
}

function post (port: MessagePort, kind: FaultMessage['kind'], err: unknown): void {
  const state = currentRequest.getStore()
  const about = state?.describe() ?? null
  const answered = kind === 'uncaughtException' && state !== undefined && state.failUncaught()
  const msg: FaultMessage = {
    t: Msg.FAULT,
    id: state?.id ?? 0,
    kind,
    script: about?.script ?? null,
    method: about?.method ?? null,
    uri: about?.uri ?? null,
    answered,
    err: serializeError(err)
  }
  port.postMessage(msg)
}
