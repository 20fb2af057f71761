// One request inside a worker thread: the `env` and `ctx` a handler receives, and RequestState, which
// runs the handler and owns everything about the request until the task settles (the response's
// phase, ABORT, waitUntil work, finishRequest(), errors). entry.ts routes channel messages to it.
//
// The task settles (and so the thread stops counting the request as busy) when the handler has
// ended, the response has been handed over (fast path or channel) and every waitUntil() promise has
// settled. Handler faults never reject the task: they become a 500 (when nothing was sent yet) and
// `WorkerResult.error`.

import { inspect } from 'node:util'
import { isMainThread } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { Msg } from '../common/messages.ts'
import type { BodyMessage, HeadMessage, LogMessage, SerializedError, WorkerResult, WorkerTask } from '../common/messages.ts'
import { FpmError } from '../common/errors.ts'
import { decodeParamsText } from '../fastcgi/params.ts'
import { cachedHandler, describeValue, loadHandler } from './app-loader.ts'
import type { FetchHandler } from './app-loader.ts'
import { cgiRequestParts, createRequest, RequestBodyStream } from './cgi-request.ts'
import { buildEnv } from './env.ts'
import { shapeOf } from '../common/params-shape.ts'
import { lightBodyBytes, lightBodyText, resultBody, ResponseSender, SendOutcome, serializeHead, serializeLightHead } from './web-response.ts'
import type { FastPathGate } from './web-response.ts'
import { installRequestGlobals } from './light-request.ts'
import { discardLightResponse, installResponseGlobal, takeLightResponse } from './light-response.ts'

// Handlers in this thread get light Requests, and `new Response()` records instead of building
// undici's objects (light-request.ts, light-response.ts). Not in the main thread (tests import this).
if (!isMainThread) {
  installRequestGlobals()
  installResponseGlobal()
}

/** The PARAMS text the server sends, decoded (the server already validated it). */
function decodeParamsOf (text: string): string[] {
  const out: string[] = []
  decodeParamsText(text, out)
  return out
}

/** Clone-safe form of anything thrown (never throws itself). */
export function serializeError (err: unknown): SerializedError {
  try {
    if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string') {
      const e = err as Error & { code?: unknown }
      const code = e.code
      let stack = typeof e.stack === 'string' ? e.stack : ''
      let cause = e.cause
      for (let depth = 0; depth < 3 && typeof cause === 'object' && cause !== null; depth++) {
        const causeStack = (cause as Error).stack
        stack += '\n[cause]: ' + (typeof causeStack === 'string' ? causeStack : inspect(cause, { depth: 1 }))
        cause = (cause as Error).cause
      }
      return {
        name: typeof e.name === 'string' ? e.name : 'Error',
        message: e.message,
        stack,
        code: typeof code === 'string' ? code : typeof code === 'number' ? String(code) : null
      }
    }
    return { name: 'Error', message: typeof err === 'string' ? err : inspect(err, { depth: 2 }), stack: '', code: null }
  } catch {
    return { name: 'Error', message: '(an unprintable value was thrown)', stack: '', code: null }
  }
}

const INTERNAL_ERROR_HEAD = 'Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
const INTERNAL_ERROR_BODY = new TextEncoder().encode('Internal Server Error\n') // cloned, never moved
const NOT_IMPLEMENTED_HEAD = 'Status: 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
const NOT_IMPLEMENTED_BODY = new TextEncoder().encode('Not Implemented\n')
/** finishRequest() with no response: an empty 200, as php sends when there was no output. */
const EMPTY_HEAD = '\r\n'

const Phase = { NONE: 0, SENDING: 1, DONE: 2 } as const
type Phase = typeof Phase[keyof typeof Phase]

function noop (): void {}

/** What `await` would wait for: a promise or any object with a then() method. */
function isThenable (value: unknown): value is PromiseLike<unknown> {
  if (value instanceof Promise) return true
  if (value instanceof Response || (typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  return typeof (value as { then?: unknown }).then === 'function'
}

function isResponse (value: unknown): value is Response {
  if (value instanceof Response) return true
  // A Response from another fetch implementation (undici's npm package...): same shape.
  if (typeof value !== 'object' || value === null) return false
  const v = value as { status?: unknown, headers?: unknown, body?: unknown }
  return typeof v.status === 'number' && typeof v.headers === 'object' && v.headers !== null &&
    typeof (v.headers as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function' && 'body' in v
}

/** Cancels the body of a Response that will not be sent (never throws). */
function releaseBody (response: Response | null | undefined): void {
  if (discardLightResponse(response)) return
  try {
    const body = response?.body
    if (body != null && body.locked === false) body.cancel().catch(noop)
  } catch {}
}

/** The `ctx` argument: Cloudflare's ExecutionContext shape plus php's fastcgi_finish_request(). */
export class HandlerContext {
  readonly #state: RequestState

  constructor (state: RequestState) {
    this.#state = state
  }

  /** The task (and the thread's busy state) settles only when `promise` has settled too. */
  waitUntil (promise: unknown): void {
    this.#state.waitUntil(promise)
  }

  /**
   * php's fastcgi_finish_request(): sends `response` now (or ends the current one, or sends an empty
   * 200). Resolves true when this call ended the response normally; false when it had already
   * ended, the request was aborted or the body failed. The handler's later return value is ignored.
   * Throws a TypeError (synchronously) for an argument that is not a Response.
   */
  finishRequest (response?: Response | null): Promise<boolean> {
    return this.#state.finishRequest(response)
  }

  /** Module-worker compatibility; a handler fault is always a 500 here. */
  passThroughOnException (): void {}
}

export class RequestState implements FastPathGate {
  readonly id: number
  readonly #task: WorkerTask
  readonly #port: MessagePort
  readonly #poolEnv: Readonly<Record<string, string>>
  /** request.signal's, made when a handler first asks for the signal (most never do). */
  #controller: AbortController | null = null
  #aborted = false
  #abortReason: Error | null = null
  #body: RequestBodyStream | null = null
  #sender: ResponseSender | null = null
  #phase: Phase = Phase.NONE
  #fast: WorkerResult['response'] = null
  #error: SerializedError | null = null
  #waits = 0
  #waitsDone: (() => void) | null = null
  #onWaitFulfilled: (() => void) | null = null
  #onWaitRejected: ((err: unknown) => void) | null = null
  #finishing: Promise<boolean> | null = null
  #settled = false
  /** The decoded params, once the handler is about to run (for describe()). */
  #params: readonly string[] | null = null

  constructor (task: WorkerTask, port: MessagePort, poolEnv: Readonly<Record<string, string>>) {
    this.id = task.id
    this.#task = task
    this.#port = port
    this.#poolEnv = poolEnv
  }

  // ---- messages from the main thread (entry.ts) ----

  onBody (msg: BodyMessage): void {
    this.#body?.push(msg)
  }

  onAck (bytes: number): void {
    this.#sender?.ack(bytes)
  }

  /** ABORT: request.signal fires, the request body errors, sending stops; nothing more is sent. */
  abort (reason: string): void {
    if (this.#aborted || this.#settled) return
    this.#aborted = true
    const err = new FpmError('FPM_ERR_REQUEST_ABORTED', reason === '' ? 'request aborted' : `request aborted: ${reason}`)
    this.#abortReason = err
    this.#body?.fail(err)
    this.#sender?.abort(err)
    this.#controller?.abort(err)
  }

  /** request.signal (SignalSource): aborted at once when the request already was. */
  get signal (): AbortSignal {
    let controller = this.#controller
    if (controller === null) {
      controller = new AbortController()
      if (this.#abortReason !== null) controller.abort(this.#abortReason)
      this.#controller = controller
    }
    return controller.signal
  }

  /**
   * An exception no code caught came from this request's code (worker/faults.ts): php ends the
   * script with a 500. When nothing was sent yet, 500 now and request.signal is aborted; the
   * handler's later response is ignored. Returns true when it answered.
   */
  failUncaught (): boolean {
    if (this.#settled || this.#aborted || this.#phase !== Phase.NONE) return false
    this.#respondWith(INTERNAL_ERROR_HEAD, INTERNAL_ERROR_BODY, false)
    this.abort('an uncaught exception came from its code')
    return true
  }

  /** The script, method and REQUEST_URI, for a log line about this request. */
  describe (): { script: string, method: string, uri: string } {
    let method = 'GET'
    let uri = ''
    const params = this.#params ?? []
    for (let i = 0; i < params.length - 1; i += 2) {
      if (params[i] === 'REQUEST_METHOD') method = params[i + 1] as string
      else if (params[i] === 'REQUEST_URI') uri = params[i + 1] as string
    }
    return { script: this.#task.script, method, uri }
  }

  // ---- the task ----

  /**
   * Runs the handler and settles. Synchronous when everything is (a handler that returns a light
   * Response on the fast path, no waitUntil): no promise and no turn of the microtask queue between
   * the handler's return and the result, which the scheduler then delivers at once.
   */
  run (): WorkerResult | Promise<WorkerResult> {
    let running: void | Promise<void> = undefined
    try {
      running = this.#run()
    } catch (err) {
      this.#runFailed(err)
    }
    if (running === undefined) return this.#result()
    return running.then(() => this.#result(), (err: unknown) => {
      this.#runFailed(err)
      return this.#result()
    })
  }

  /** A bug here, not a handler fault: still answer something and settle. */
  #runFailed (err: unknown): void {
    this.#recordError(err)
    if (this.#phase === Phase.NONE) this.#respondError(true)
  }

  #result (): WorkerResult | Promise<WorkerResult> {
    if (this.#waits > 0) return this.#resultAfterWaits()
    this.#settled = true
    return { response: this.#aborted ? null : this.#fast, error: this.#error }
  }

  async #resultAfterWaits (): Promise<WorkerResult> {
    while (this.#waits > 0) await new Promise<void>((resolve) => { this.#waitsDone = resolve })
    return this.#result()
  }

  #run (): void | Promise<void> {
    const handler = cachedHandler(this.#task.script)
    return handler === undefined ? this.#loadAndRun() : this.#runHandler(handler)
  }

  async #loadAndRun (): Promise<void> {
    let handler: FetchHandler
    try {
      handler = await loadHandler(this.#task.script)
    } catch (err) {
      this.#recordError(err)
      this.#respondError(true)
      return
    }
    await this.#runHandler(handler)
  }

  #runHandler (handler: FetchHandler): void | Promise<void> {
    if (this.#aborted) return // ABORT came before the handler ran: don't run it
    const task = this.#task
    const params = typeof task.params === 'string' ? decodeParamsOf(task.params) : task.params
    this.#params = params
    const shape = task.shape ?? shapeOf(params)
    const parts = cgiRequestParts(params, shape)
    let body: Uint8Array | ReadableStream<Uint8Array> | null = task.body
    if (task.bodyStreaming && parts.hasBody) {
      this.#body = new RequestBodyStream(this.id, this.#port)
      body = this.#body.stream
    }
    const request = createRequest(parts, body, this)
    if (request === null) {
      this.#body = null
      this.#respondWith(NOT_IMPLEMENTED_HEAD, NOT_IMPLEMENTED_BODY, true)
      return
    }

    let returned: unknown
    let threw = false
    try {
      returned = handler(request, buildEnv(params, this.#poolEnv, shape), new HandlerContext(this))
      // A handler that answers synchronously goes on without a turn of the microtask queue.
      if (isThenable(returned)) return this.#awaitHandler(returned)
    } catch (err) {
      threw = true
      this.#recordError(err)
    }
    return this.#handlerDone(returned, threw)
  }

  async #awaitHandler (pending: PromiseLike<unknown>): Promise<void> {
    let returned: unknown
    let threw = false
    try {
      returned = await pending
    } catch (err) {
      threw = true
      this.#recordError(err)
    }
    await this.#handlerDone(returned, threw)
  }

  /** What the handler returned (or threw) becomes the response. */
  #handlerDone (returned: unknown, threw: boolean): void | Promise<void> {
    if (this.#phase !== Phase.NONE) {
      // finishRequest() already answered: whatever came back is ignored.
      if (!threw && isResponse(returned)) releaseBody(returned)
    } else if (threw) {
      this.#respondError(true)
    } else if (isResponse(returned) && returned.status >= 200 && returned.status <= 599) {
      const outcome = this.#respond(returned, true)
      if (typeof outcome !== 'number') return this.#sent(outcome)
    } else {
      const what = isResponse(returned) ? `a Response with status ${returned.status} (Response.error()?)` : describeValue(returned)
      this.#recordError(new FpmError('FPM_ERR_HANDLER_INVALID', `${this.#task.script}: the handler returned ${what}, not a Response`))
      this.#respondError(true)
    }
    if (this.#finishing !== null) return this.#finishing.then(noop)
  }

  async #sent (outcome: Promise<SendOutcome>): Promise<void> {
    await outcome
    if (this.#finishing !== null) await this.#finishing
  }

  /** FastPathGate: the response may go back in the task result only when nothing else is pending. */
  canUseFastPath (): boolean {
    return this.#waits === 0
  }

  /** Synchronous when nothing waits to be sent (a light Response on the fast path, a bad head). */
  #respond (response: Response, allowFastPath: boolean): SendOutcome | Promise<SendOutcome> {
    this.#phase = Phase.SENDING
    let head: string
    let body: ReadableStream<Uint8Array> | Uint8Array | null
    const light = takeLightResponse(response, this.#task.isHead)
    if (light !== null) {
      // Recorded by the light Response: the head and the bytes, no stream.
      head = serializeLightHead(light)
      if (allowFastPath && this.#waits === 0) {
        // A small body goes straight into the task result, as text (no bytes, no sender).
        const text = this.#task.isHead ? '' : lightBodyText(light.body)
        if (text !== null) {
          this.#phase = Phase.DONE
          this.#fast = { head, body: text === '' ? null : text }
          return SendOutcome.FAST
        }
      }
      body = this.#task.isHead ? null : lightBodyBytes(light.body)
    } else {
      try {
        head = serializeHead(response)
      } catch (err) {
        this.#recordError(err)
        releaseBody(response)
        this.#respondError(allowFastPath)
        return SendOutcome.FAILED_BEFORE_HEAD
      }
      body = response.body
      if (this.#task.isHead && body !== null) {
        releaseBody(response)
        body = null
      }
    }
    return this.#send(head, body, allowFastPath)
  }

  async #send (head: string, body: ReadableStream<Uint8Array> | Uint8Array | null, allowFastPath: boolean): Promise<SendOutcome> {
    const sender = new ResponseSender(this.id, this.#port, head, body, allowFastPath ? this : null)
    this.#sender = sender
    const outcome = await sender.start()
    this.#sender = null
    this.#phase = Phase.DONE
    if (outcome === SendOutcome.FAST) {
      this.#fast = { head, body: resultBody(sender.fastBody) }
    } else if (outcome === SendOutcome.FAILED_BEFORE_HEAD) {
      this.#recordError(sender.error)
      this.#respondError(allowFastPath)
    } else if (outcome === SendOutcome.FAILED_AFTER_HEAD) {
      this.#recordError(sender.error)
    }
    return outcome
  }

  /** The 500 for a handler fault before anything was sent. */
  #respondError (allowFastPath: boolean): void {
    this.#respondWith(INTERNAL_ERROR_HEAD, INTERNAL_ERROR_BODY, allowFastPath)
  }

  /** A fixed small response: in the task result when allowed, else on the channel. */
  #respondWith (head: string, body: Uint8Array, allowFastPath: boolean): void {
    this.#phase = Phase.DONE
    if (this.#aborted) return
    if (allowFastPath && this.#waits === 0) {
      this.#fast = { head, body }
    } else {
      const msg: HeadMessage = { t: Msg.HEAD, id: this.id, head, body, end: true }
      this.#port.postMessage(msg)
    }
  }

  finishRequest (response: Response | null | undefined): Promise<boolean> {
    if (response != null && !isResponse(response)) {
      // Thrown, not rejected: an un-awaited rejection would be an unhandled rejection (worker/faults.ts).
      throw new TypeError(`finishRequest() takes a Response or nothing, got ${describeValue(response)}`)
    }
    if (this.#aborted || this.#settled || this.#phase === Phase.DONE) {
      releaseBody(response)
      return Promise.resolve(false)
    }
    if (this.#phase === Phase.SENDING) {
      // A response is on its way: end it where it is; `response` (if any) comes too late.
      releaseBody(response)
      return this.#sender === null ? Promise.resolve(false) : this.#sender.cut()
    }
    if (response == null) {
      this.#phase = Phase.DONE
      const msg: HeadMessage = { t: Msg.HEAD, id: this.id, head: EMPTY_HEAD, body: null, end: true }
      this.#port.postMessage(msg)
      return Promise.resolve(true)
    }
    const finishing = Promise.resolve(this.#respond(response, false)).then(isChannelEnd)
    this.#finishing = finishing
    return finishing
  }

  waitUntil (promise: unknown): void {
    if (this.#settled) {
      this.#log('warn', 'ctx.waitUntil() called after the request ended: it cannot delay it', null)
      Promise.resolve(promise).then(noop, (err: unknown) => this.#log('error', 'ctx.waitUntil() promise rejected', err))
      return
    }
    this.#waits++
    this.#onWaitFulfilled ??= () => this.#waitSettled()
    this.#onWaitRejected ??= (err: unknown) => {
      this.#log('error', 'ctx.waitUntil() promise rejected', err)
      this.#waitSettled()
    }
    Promise.resolve(promise).then(this.#onWaitFulfilled, this.#onWaitRejected)
  }

  #waitSettled (): void {
    if (--this.#waits === 0 && this.#waitsDone !== null) {
      const resolve = this.#waitsDone
      this.#waitsDone = null
      resolve()
    }
  }

  /** The first error goes in the task result, later ones to the log. The abort itself is no error. */
  #recordError (err: unknown): void {
    if (this.#aborted && isAbortError(err, this.#abortReason)) return
    if (this.#error === null) this.#error = serializeError(err)
    else this.#log('error', 'another error in the same request', err)
  }

  #log (level: LogMessage['level'], msg: string, err: unknown): void {
    const log: LogMessage = { t: Msg.LOG, id: this.id, level, msg, err: err === null ? null : serializeError(err) }
    this.#port.postMessage(log)
  }
}

function isAbortError (err: unknown, reason: Error | null): boolean {
  if (err === reason) return true
  if (typeof err !== 'object' || err === null) return false
  try {
    return (err as { code?: unknown }).code === 'FPM_ERR_REQUEST_ABORTED' || (err as { name?: unknown }).name === 'AbortError'
  } catch {
    return false
  }
}

function isChannelEnd (outcome: SendOutcome): boolean {
  return outcome === SendOutcome.CHANNEL
}
