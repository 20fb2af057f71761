// One FastCGI request on one connection, from BEGIN_REQUEST to END_REQUEST (FastCGI spec §5-6):
// BEGIN -> PARAMS* -> empty PARAMS -> STDIN* -> empty STDIN, then the response.
// It assembles params within the pool's limits, decides which module runs, buffers a small body
// or streams a large one to the worker on demand (PULL credits), relays the response to the
// connection, and makes sure every request it accepted gets exactly one END_REQUEST.

import { performance } from 'node:perf_hooks'
import { Buffer } from 'node:buffer'
import { decodeExpected, paramsText, type ParamNames } from '../fastcgi/index.ts'
import { expectedNames, shapeOf, valueAt, type ParamsShape } from '../common/params-shape.ts'
import { Msg, TRANSFER_MIN_BYTES, type WorkerResult, type SerializedError } from '../common/messages.ts'
import type { PoolRequest } from '../pool/pool-request.ts'
import { formatTime } from '../config/values.ts'
import { serverResponse, type ServerResponseKind } from './responder.ts'
import { ownPage, type OwnPage } from '../status/pages.ts'
import type { Connection } from './connection.ts'
import type { AccessRecord } from '../log/access-log.ts'

const Stage = {
  PARAMS: 0,
  STDIN: 1,
  /** input done (or being discarded after an early response) */
  INPUT_DONE: 2
} as const

const ResponseState = {
  NONE: 0,
  HEAD_SENT: 1,
  ENDED: 2
} as const

export class Exchange implements PoolRequest {
  readonly conn: Connection
  readonly requestId: number
  readonly keepConn: boolean
  // PoolRequest
  poolId = 0
  threadId = 0
  startedAtMs = 0

  #stage: number = Stage.PARAMS
  #paramChunks: Buffer[] = []
  #paramBytes = 0
  /** The PARAMS bytes as latin1 text: what the thread gets (and decodes itself). */
  #paramsText = ''
  /**
   * The decoded params: with pm.accept = threads every value, handed as they are to the handler on
   * this thread; else the names only (fastcgi/params.ts decodeParamNames, read with valueAt).
   */
  #params: ParamNames = []
  /** Their shape, handed with them. */
  #shape: ParamsShape | null = null
  method = 'GET'
  uri = ''
  script = ''
  isHead = false
  #contentLength = -1
  // request body
  #bodyChunks: Buffer[] = []
  #bodyBytes = 0
  #bodyTotal = 0
  #stdinEnded = false
  #dispatched = false
  #streaming = false
  #credit = 0
  #discarding = false
  // response
  #response: number = ResponseState.NONE
  #settled = false
  #aborted = false
  /** request_terminate_timeout: answered (504) by onTimedOut; the pool logged it. */
  #timedOut = false
  /** request.body_timeout: performance.now() of the last body bytes (or of the end of the params). */
  #lastInputMs = 0
  #bodyTimer: NodeJS.Timeout | null = null
  /** The pool's access log: this request's line (log/access-log.ts); null when the pool has none. */
  readonly #access: AccessRecord | null

  constructor (conn: Connection, requestId: number, keepConn: boolean) {
    this.conn = conn
    this.requestId = requestId
    this.keepConn = keepConn
    this.#access = conn.ctx.accessLog?.begin(conn.peer) ?? null
  }

  get isResponseEnded (): boolean { return this.#response === ResponseState.ENDED }
  get isInputDone (): boolean { return this.#stage === Stage.INPUT_DONE }
  /** The web server sent the end of the body (the empty FCGI_STDIN): it has nothing more to send for this request. */
  get inputEnded (): boolean { return this.#stdinEnded }
  get isParamsStage (): boolean { return this.#stage === Stage.PARAMS }
  get isStdinStage (): boolean { return this.#stage === Stage.STDIN }
  get dispatched (): boolean { return this.#dispatched }
  get settled (): boolean { return this.#settled }
  /** Bytes of streamed body waiting for the worker to ask for them (connection backpressure). */
  get queuedBodyBytes (): number { return this.#streaming ? this.#bodyBytes : 0 }
  /** The handler asked for body bytes that have not arrived: the connection must read on (connection backpressure). */
  get isStarving (): boolean { return this.#credit > 0 && this.#bodyBytes === 0 && !this.#stdinEnded && !this.#discarding }

  // ---- input (called by the connection, in record order) ----

  addParams (content: Buffer): void {
    this.#paramBytes += content.length
    if (this.#paramBytes > this.conn.ctx.pool.config.request.maxParamsBytes) {
      this.conn.log.warn({ requestId: this.requestId, peer: this.conn.peer, bytes: this.#paramBytes }, `FastCGI params exceed request.max_params_size (${this.conn.ctx.pool.config.request.maxParamsBytes} bytes): 431`)
      this.#respondEarly('paramsTooLarge')
      return
    }
    this.#paramChunks.push(content)
  }

  paramsDone (): void {
    if (this.#discarding) { this.#stage = Stage.STDIN; return }
    const chunks = this.#paramChunks
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#paramBytes)
    this.#paramChunks = []
    const text = all === undefined ? '' : paramsText(all)
    this.#paramsText = text
    // Throws ProtocolError (the connection closes). When another thread runs the request it gets the
    // text and decodes it itself (fastcgi/params.ts paramsText) while this one reads a few values: the
    // names are enough here. The last shape's names are compared in place (bytes: `all`, whose latin1 text it is).
    const expected = expectedNames()
    const bytes = expected === null || all === undefined ? null : new DataView(all.buffer, all.byteOffset, all.byteLength)
    const params = decodeExpected(text, bytes, expected, this.conn.ctx.sameThread === true)
    this.#params = params
    this.#access?.setParams(params, text)
    this.#stage = Stage.STDIN
    // Where this web server puts each variable, worked out once for its list of names (common/params-shape.ts).
    const shape = shapeOf(params)
    this.#shape = shape
    this.uri = valueAt(params, shape.requestUri, '', text)
    const methods = shape.requestMethods
    if (methods.length > 0) this.method = valueAt(params, methods[methods.length - 1]!, this.method, text)
    const contentLength = valueAt(params, shape.contentLength, '', text)
    this.#contentLength = contentLength === '' ? -1 : Number(contentLength)
    const scriptName = valueAt(params, shape.scriptName, undefined, text)
    const query = valueAt(params, shape.queryString, '', text)
    const scriptFilename = valueAt(params, shape.scriptFilename, undefined, text)
    const pathTranslated = valueAt(params, shape.pathTranslated, undefined, text)
    this.isHead = this.method === 'HEAD'
    // php-fpm's ping and status pages, before script resolution (status/pages.ts).
    const page = ownPage(this.conn.ctx, { scriptName, query, scriptPath: scriptFilename ?? pathTranslated, isHead: this.isHead })
    if (page !== null) {
      if (page instanceof Promise) this.#respondOwnLater(page)
      else this.#respondOwn(page)
      return
    }
    const pool = this.conn.ctx.pool
    const resolved = this.conn.ctx.resolver.resolve(scriptFilename ?? pathTranslated)
    if (resolved.kind === 'not-found') {
      this.conn.log.info({ script: scriptFilename ?? null, uri: this.uri, reason: resolved.reason }, 'Primary script unknown')
      this.conn.writeStderr(this.requestId, 'Primary script unknown')
      this.#respondEarly('notFound')
      return
    }
    if (resolved.kind === 'denied') {
      const msg = `Access to the script '${resolved.script}' has been denied (see security.limit_extensions)`
      this.conn.log.info({ uri: this.uri }, msg)
      this.conn.writeStderr(this.requestId, msg)
      this.#respondEarly('denied')
      return
    }
    this.script = resolved.script
    this.#lastInputMs = performance.now()
    const maxBody = pool.config.request.bodyMaxBytes
    if (maxBody > 0 && this.#contentLength > maxBody) {
      this.conn.log.info({ uri: this.uri, contentLength: this.#contentLength }, `request body of ${this.#contentLength} bytes exceeds request.body_max_size (${maxBody}): 413`)
      this.#respondEarly('bodyTooLarge')
      return
    }
    if (this.#contentLength > pool.config.request.bodyBufferBytes) this.#dispatch(true)
  }

  addStdin (content: Buffer): void {
    if (this.#discarding) return
    this.#bodyTotal += content.length
    const maxBody = this.conn.ctx.pool.config.request.bodyMaxBytes
    if (maxBody > 0 && this.#bodyTotal > maxBody) {
      this.conn.log.info({ uri: this.uri }, `request body exceeds request.body_max_size (${maxBody}): 413`)
      if (this.#dispatched) this.conn.ctx.pool.send(this, { t: Msg.BODY, id: this.poolId, body: null, end: true, error: 'FPM_ERR_BODY_TOO_LARGE' })
      this.#respondEarly('bodyTooLarge')
      return
    }
    this.#bodyChunks.push(content)
    this.#bodyBytes += content.length
    this.#lastInputMs = performance.now()
    if (this.#streaming) {
      this.#flushBody()
    } else if (this.#bodyBytes > this.conn.ctx.pool.config.request.bodyBufferBytes) {
      this.#dispatch(true)
    }
  }

  stdinDone (): void {
    this.#stage = Stage.INPUT_DONE
    this.#stdinEnded = true
    this.#clearBodyTimer()
    if (this.#discarding) { this.#maybeFinished(); return }
    if (!this.#dispatched) this.#dispatch(false)
    else if (this.#streaming) this.#flushBody()
    this.#maybeFinished()
  }

  // ---- request.body_timeout ----

  /**
   * Called by the connection after each chunk it read: a request whose body is still incomplete
   * gets its timer (requests whose input came whole in one read, most of them, never get one).
   */
  watchBody (): void {
    if (this.#bodyTimer !== null || this.#stage !== Stage.STDIN || this.#discarding || this.#stdinEnded) return
    const timeoutMs = this.conn.ctx.pool.config.request.bodyTimeoutMs
    if (timeoutMs <= 0) return
    this.#bodyTimer = setTimeout(() => { this.#checkBody() }, timeoutMs).unref()
  }

  /** The connection resumes reading: the time its socket was paused (our backpressure) was no stall of the web server. */
  inputResumed (): void {
    if (this.#bodyTimer !== null) this.#lastInputMs = performance.now()
  }

  #checkBody (): void {
    this.#bodyTimer = null
    if (this.#stage !== Stage.STDIN || this.#discarding || this.#stdinEnded) return
    const timeoutMs = this.conn.ctx.pool.config.request.bodyTimeoutMs
    const now = performance.now()
    if (this.conn.isReadPaused) this.#lastInputMs = now
    const idleMs = now - this.#lastInputMs
    if (idleMs < timeoutMs) {
      this.#bodyTimer = setTimeout(() => { this.#checkBody() }, Math.ceil(timeoutMs - idleMs)).unref()
      return
    }
    // nginx answers its client_body_timeout with 408. The web server's stream of this request is
    // broken (the rest of the body may still come, or never): the connection closes once its other
    // requests are done.
    const expected = this.#contentLength >= 0 ? ` of ${this.#contentLength}` : ''
    this.conn.log.info({ uri: this.uri, script: this.script, received: this.#bodyTotal, contentLength: this.#contentLength, peer: this.conn.peer },
      `request body stalled: no bytes for request.body_timeout (${formatTime(timeoutMs)}) after ${this.#bodyTotal}${expected} bytes: 408, closing the connection`)
    if (this.#dispatched && !this.#settled) {
      // The handler's body stream fails with this code; then its request.signal is aborted (#respondEarly).
      this.conn.ctx.pool.send(this, { t: Msg.BODY, id: this.poolId, body: null, end: true, error: 'FPM_ERR_BODY_TIMEOUT' })
    }
    this.#respondEarly('bodyTimeout')
    this.conn.closeWhenIdle()
  }

  #clearBodyTimer (): void {
    if (this.#bodyTimer === null) return
    clearTimeout(this.#bodyTimer)
    this.#bodyTimer = null
  }

  /** FCGI_ABORT_REQUEST, or the connection went away. */
  abort (reason: string): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#clearBodyTimer()
    this.#discarding = true
    this.#bodyChunks = []
    this.#bodyBytes = 0
    if (this.#dispatched && !this.#settled) this.conn.ctx.pool.send(this, { t: Msg.ABORT, id: this.poolId, reason })
    if (this.#response !== ResponseState.ENDED && !this.conn.isDestroyed) {
      this.#response = ResponseState.ENDED
      this.conn.writeEnd(this.requestId, 1)
    }
    this.#response = ResponseState.ENDED
    this.#stage = Stage.INPUT_DONE
    this.#maybeFinished()
  }

  // ---- dispatch ----

  #dispatch (streaming: boolean): void {
    this.#dispatched = true
    this.#streaming = streaming
    let body: Uint8Array | null = null
    if (!streaming && this.#bodyBytes > 0) {
      body = exactCopy(this.#bodyChunks, this.#bodyBytes)
      this.#bodyChunks = []
      this.#bodyBytes = 0
    }
    this.conn.ctx.pool.dispatch(this, {
      script: this.script,
      // Another thread decodes the text itself (cheaper to clone than the pairs); this one has them all.
      params: this.conn.ctx.sameThread === true ? this.#params as string[] : this.#paramsText,
      shape: this.conn.ctx.sameThread === true ? this.#shape : null,
      body,
      bodyStreaming: streaming,
      isHead: this.isHead
    })
  }

  #flushBody (): void {
    while (this.#credit > 0 && this.#bodyBytes > 0) {
      const n = Math.min(this.#credit, this.#bodyBytes)
      const chunk = takeBytes(this.#bodyChunks, n)
      this.#bodyBytes -= n
      this.#credit -= n
      const end = this.#stdinEnded && this.#bodyBytes === 0
      this.conn.ctx.pool.send(this, { t: Msg.BODY, id: this.poolId, body: chunk, end, error: null },
        chunk.byteLength >= TRANSFER_MIN_BYTES ? [chunk.buffer as ArrayBuffer] : undefined)
      if (end) { this.#credit = 0; return }
    }
    if (this.#credit > 0 && this.#stdinEnded && this.#bodyBytes === 0) {
      this.#credit = 0
      this.conn.ctx.pool.send(this, { t: Msg.BODY, id: this.poolId, body: null, end: true, error: null })
    }
    this.conn.checkBodyBackpressure()
  }

  // ---- PoolRequest: the worker's side of the exchange ----

  onPull (bytes: number): void {
    if (this.#discarding) return
    this.#credit += bytes
    this.#flushBody()
  }

  onHead (head: string, body: Uint8Array | null, end: boolean): void {
    if (this.#response !== ResponseState.NONE) return
    this.#response = end ? ResponseState.ENDED : ResponseState.HEAD_SENT
    const sent = this.#writeHead(head, this.isHead ? null : body, end)
    this.#ack(body, sent)
    if (end) this.#responseEnded()
  }

  onChunk (body: Uint8Array | null, end: boolean, failed: boolean): void {
    if (this.#response !== ResponseState.HEAD_SENT) return
    if (end) this.#response = ResponseState.ENDED
    if (failed) {
      this.conn.log.error({ uri: this.uri, script: this.script }, 'response body failed after the headers were sent: response cut short')
    }
    const sent = this.conn.writeStdout(this.requestId, null, this.isHead ? null : body, end, failed ? 1 : 0)
    this.#ack(body, sent)
    if (end) {
      if (failed) this.conn.closeWhenIdle()
      this.#responseEnded()
    }
  }

  onWorkerLog (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err: SerializedError | null): void {
    this.conn.log[level]({ uri: this.uri, script: this.script, err: err ?? undefined }, msg)
  }

  /**
   * request_terminate_timeout (the pool has logged it and aborts or terminates the handler): 504
   * now when nothing was sent (the connection stays usable), else the response is cut short as
   * for a body that failed (END_REQUEST appStatus 1, the connection closes once idle). The rest of
   * the request body is discarded.
   */
  onTimedOut (): void {
    this.#timedOut = true
    this.#discarding = true
    this.#bodyChunks = []
    this.#bodyBytes = 0
    this.#credit = 0
    if (this.#response === ResponseState.NONE) {
      this.#respondServer('timeout')
    } else if (this.#response === ResponseState.HEAD_SENT) {
      this.#response = ResponseState.ENDED
      this.conn.writeEnd(this.requestId, 1)
      this.conn.closeWhenIdle()
      this.#responseEnded()
    }
    this.conn.checkBodyBackpressure()
    this.#maybeFinished()
  }

  onSettled (result: WorkerResult | null, error: Error | null): void {
    this.#settled = true
    this.#access?.settled(result)
    if (this.#timedOut && result === null) {
      // Its thread was terminated (or is stuck): the pool logged it, the client has its 504.
      this.conn.log.debug({ uri: this.uri, script: this.script, code: (error as { code?: string } | null)?.code }, `timed-out request settled: ${error?.message ?? ''}`)
    } else if (result !== null) {
      if (result.error !== null) {
        // A body the client made too big, or a request the web server aborted, is not the handler's fault.
        const clientSide = result.error.code === 'FPM_ERR_BODY_TOO_LARGE' || result.error.code === 'FPM_ERR_BODY_TIMEOUT' ||
          result.error.code === 'FPM_ERR_REQUEST_ABORTED'
        this.conn.log[clientSide ? 'info' : 'error']({ uri: this.uri, script: this.script, method: this.method, err: result.error }, `handler failed: ${result.error.message}`)
      }
      if (result.response !== null && this.#response === ResponseState.NONE) {
        this.#response = ResponseState.ENDED
        this.#writeHead(result.response.head, this.isHead ? null : result.response.body, true)
        this.#responseEnded()
      }
    } else if (isRefusal(error)) {
      // The pool answered for itself: its queue was full or too slow, or it is closing. The pool
      // counts these and warns once per episode; 503 with Retry-After tells the client to retry.
      this.conn.log.debug({ uri: this.uri, script: this.script, code: error.code }, `request refused: ${error.message}: 503`)
      this.#respondServer('unavailable')
    } else {
      const code = (error as { code?: string } | null)?.code
      this.conn.log.error({ uri: this.uri, script: this.script, method: this.method, err: error, code }, `worker thread ended while serving the request: ${error?.message ?? 'unknown'}`)
      if (this.#response === ResponseState.NONE) {
        this.#respondServer('workerDied')
      } else if (this.#response === ResponseState.HEAD_SENT) {
        this.#response = ResponseState.ENDED
        this.conn.writeEnd(this.requestId, 1)
        this.conn.closeWhenIdle()
        this.#responseEnded()
      }
    }
    this.#maybeFinished()
  }

  // ---- internals ----

  /** A response the server makes before (or instead of) the worker's. */
  #respondEarly (kind: ServerResponseKind): void {
    this.#discarding = true
    this.#bodyChunks = []
    this.#bodyBytes = 0
    this.#paramChunks = []
    if (this.#dispatched && !this.#settled) this.conn.ctx.pool.send(this, { t: Msg.ABORT, id: this.poolId, reason: kind })
    this.#respondServer(kind)
    this.#maybeFinished()
  }

  /** A page the server answers itself (ping, status) instead of dispatching: the input is discarded. */
  #respondOwn (page: OwnPage): void {
    this.#discarding = true
    this.#response = ResponseState.ENDED
    this.#writeHead(page.head, page.body, true)
    this.#responseEnded()
  }

  /** pm.accept = threads: the status page comes from the main thread (worker/thread-server.ts). */
  #respondOwnLater (page: Promise<OwnPage>): void {
    this.#discarding = true
    page.then((p) => {
      if (this.#response === ResponseState.NONE && !this.conn.isDestroyed) this.#respondOwn(p)
    }, () => { this.#respondServer('unavailable') })
  }

  #respondServer (kind: ServerResponseKind): void {
    if (this.#response !== ResponseState.NONE) return
    this.#response = ResponseState.ENDED
    const r = serverResponse(kind, this.isHead)
    this.#writeHead(r.head, r.body, true)
    this.#responseEnded()
  }

  /** The response head (with its first body bytes): to the connection, and to the access log's record. */
  #writeHead (head: string, body: Uint8Array | string | null, end: boolean): ReturnType<Connection['writeStdout']> {
    this.#access?.sent(head)
    return this.conn.writeStdout(this.requestId, head, body, end, 0)
  }

  #ack (body: Uint8Array | null, written: boolean): void {
    if (body === null || body.byteLength === 0 || this.#settled) return
    const bytes = body.byteLength
    if (written) this.conn.ctx.pool.send(this, { t: Msg.ACK, id: this.poolId, bytes })
    else this.conn.onDrain(() => { if (!this.#settled) this.conn.ctx.pool.send(this, { t: Msg.ACK, id: this.poolId, bytes }) })
  }

  #responseEnded (): void {
    if (this.#stage !== Stage.INPUT_DONE && !this.#discarding) {
      // The response is complete but the web server is still sending the body (the handler did
      // not read it all): nobody will ask for it any more, so discard the rest instead of
      // buffering it, and free the connection for reading.
      this.#discarding = true
      this.#bodyChunks = []
      this.#bodyBytes = 0
      this.conn.checkBodyBackpressure()
    }
    this.#maybeFinished()
  }

  /** The FastCGI id is free again once the response ended and the input is complete (or discarded). */
  #maybeFinished (): void {
    if (this.#access !== null) this.#logAccess(this.#access)
    if (this.#response === ResponseState.ENDED && (this.#stage === Stage.INPUT_DONE || this.#discarding)) {
      this.#clearBodyTimer()
      this.conn.exchangeFinished(this)
    }
  }

  /**
   * The access log line, once: when the response has ended and the handler, if a thread took the
   * request, has ended too (php writes it when the script ends); a timed-out request at its 504.
   */
  #logAccess (access: AccessRecord): void {
    if (access.ended || this.#response !== ResponseState.ENDED || (this.#dispatched && !this.#settled && !this.#timedOut)) return
    access.finish(this)
  }
}

/** The pool refused the request (it never reached a thread): FPM_ERR_QUEUE_FULL, _QUEUE_TIMEOUT, _POOL_CLOSED. */
function isRefusal (error: Error | null): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'FPM_ERR_QUEUE_FULL' || code === 'FPM_ERR_QUEUE_TIMEOUT' || code === 'FPM_ERR_POOL_CLOSED'
}

/** Copies `chunks` (views into socket reads) into one exact-size buffer that can be transferred. */
function exactCopy (chunks: Buffer[], total: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(total))
  let off = 0
  for (const c of chunks) { out.set(c, off); off += c.length }
  return out
}

/** Removes and returns the first `n` bytes of `chunks` as one exact-size buffer. */
function takeBytes (chunks: Buffer[], n: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(n))
  let off = 0
  while (off < n) {
    const c = chunks[0]!
    const need = n - off
    if (c.length <= need) {
      out.set(c, off)
      off += c.length
      chunks.shift()
    } else {
      out.set(c.subarray(0, need), off)
      chunks[0] = c.subarray(need)
      off += need
    }
  }
  return out
}
