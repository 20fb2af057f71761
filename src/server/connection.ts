// One accepted socket (the per-connection half of php's fastcgi.c; Go's child.go handleRecord).
// Routes records to their Exchange by request id: several requests may be multiplexed on one
// connection. Management records (id 0) are answered here. A peer that breaks the protocol gets
// its connection closed with one warning naming the peer; nothing escapes to the server.

import { performance } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import {
  RecordParser, type RecordSink, RecordType, Role, ProtocolStatus, FCGI_KEEP_CONN,
  parseBeginRequest, decodeParams, buildUnknownType, buildGetValuesResult
} from '../fastcgi/index.ts'
import { ProtocolError, isFpmError } from '../common/errors.ts'
import { IdMap } from '../common/id-map.ts'
import type { Logger } from '../log/logger.ts'
import type { AccessLog } from '../log/access-log.ts'
import type { ScriptResolver } from '../pool/script-resolver.ts'
import type { PageContext } from '../status/pages.ts'
import { Exchange } from './exchange.ts'
import { takeReadsDirectly } from '../common/direct-reads.ts'
import { frameStdout, frameEnd, frameEndOnly, frameStderr } from './responder.ts'
import {
  MAX_CONNECTIONS, MAX_REQUESTS, MAX_REQUESTS_PER_CONNECTION, BODY_QUEUE_HIGH_WATER_BYTES, CLOSE_LINGER_MS, DROP_LINGER_MS
} from './limits.ts'

/** What every connection of a pool shares: the pool, and its ping and status pages (status/pages.ts PageContext), then: */
export interface ServerContext extends PageContext {
  readonly resolver: ScriptResolver
  readonly log: Logger
  /** The pool's access log (log/access-log.ts); absent or null: none. */
  readonly accessLog?: AccessLog | null
  /** pm.accept = threads: told of each connection accepted and closed (worker/thread-server.ts AcceptBalance). */
  readonly acceptBalance?: { accepted: () => void, closed: () => void }
  /** pm.accept = threads: the handlers run on this thread (worker/thread-server.ts). */
  readonly sameThread?: boolean
}

const GET_VALUES_ANSWERS: Record<string, string> = {
  FCGI_MAX_CONNS: String(MAX_CONNECTIONS),
  FCGI_MAX_REQS: String(MAX_REQUESTS),
  FCGI_MPXS_CONNS: '1'
}

/** request.body_timeout's check after each read (one function, not a closure per read). */
function watchBody (ex: Exchange): void { ex.watchBody() }

export class Connection implements RecordSink {
  readonly ctx: ServerContext
  readonly log: Logger
  readonly peer: string
  /** Where the listener keeps it (server/listener.ts); -1 once closed. */
  listIndex = -1
  readonly #socket: Socket
  readonly #parser: RecordParser
  readonly #exchanges = new IdMap<Exchange>(8)
  /** The socket's 'drain' listener is added with the first waiter (most connections never wait). */
  #drainWaiters: Array<() => void> | null = null
  /** The listener's bookkeeping, after this connection's own (one function for all its connections). */
  readonly #onClosed: (connection: Connection) => void
  #closeWhenIdle = false
  /** The next request is the last (closeAfterRequest): close once it is answered. */
  #closeAfterNext = false
  /** A request finished before the web server sent all of its input: more bytes may still come. */
  #inputOutstanding = false
  #ending = false
  #paused = false
  /**
   * After end() (#endThenDestroy): destroys a peer that never closes; cleared when the socket closes,
   * since its closure holds the whole connection (parser, last reads, queued writes), thousands of
   * them for 5 s at a new connection per request.
   */
  #lingerTimer: NodeJS.Timeout | null = null
  #lingerDeadlineMs = 0

  constructor (socket: Socket, ctx: ServerContext, onClosed: (connection: Connection) => void) {
    this.ctx = ctx
    this.#onClosed = onClosed
    this.log = ctx.log
    this.#socket = socket
    this.peer = socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort ?? ''}` : 'unix'
    this.#parser = new RecordParser(this)
    const onData = (chunk: Buffer): void => { this.#onData(chunk) }
    socket.on('data', onData)
    takeReadsDirectly(socket, onData)
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') this.log.debug({ peer: this.peer, err }, 'connection error')
    })
    socket.on('close', () => { this.#onClose() })
  }

  get isDestroyed (): boolean { return this.#socket.destroyed }
  /** Reading is paused for backpressure (checkBodyBackpressure): a body that does not arrive is not the web server's stall. */
  get isReadPaused (): boolean { return this.#paused }

  // ---- records in ----

  #onData (chunk: Buffer): void {
    if (this.#ending) return // after end(): discard what the peer still sends
    try {
      this.#parser.push(chunk)
    } catch (err) {
      if (isFpmError(err) && err.code.startsWith('FPM_ERR_PROTOCOL')) {
        this.log.warn({ peer: this.peer, code: err.code }, `closing FastCGI connection from ${this.peer}: ${err.message}`)
      } else {
        this.log.error({ peer: this.peer, err }, `closing FastCGI connection from ${this.peer} after an internal error`)
      }
      this.#socket.destroy()
      return
    }
    // request.body_timeout: requests whose body is still incomplete after this read.
    this.#exchanges.forEach(watchBody)
  }

  onRecord (type: number, requestId: number, content: Buffer): void {
    switch (type) {
      case RecordType.BEGIN_REQUEST: return this.#onBegin(requestId, content)
      case RecordType.PARAMS: {
        const ex = this.#exchanges.get(requestId)
        if (ex === undefined) return // spec §3.3: records for inactive ids are ignored
        if (!ex.isParamsStage) throw new ProtocolError('FPM_ERR_PROTOCOL_SEQUENCE', `FCGI_PARAMS after the params stream ended (request ${requestId})`)
        if (content.length === 0) ex.paramsDone()
        else ex.addParams(content)
        return
      }
      case RecordType.STDIN: {
        const ex = this.#exchanges.get(requestId)
        if (ex === undefined) return
        if (ex.isParamsStage) throw new ProtocolError('FPM_ERR_PROTOCOL_SEQUENCE', `FCGI_STDIN before the params stream ended (request ${requestId})`)
        if (ex.isInputDone) return // input already complete or being discarded
        if (content.length === 0) ex.stdinDone()
        else ex.addStdin(content)
        return
      }
      case RecordType.ABORT_REQUEST: {
        const ex = this.#exchanges.get(requestId)
        if (ex !== undefined) {
          this.log.debug({ peer: this.peer, requestId, uri: ex.uri }, 'FCGI_ABORT_REQUEST')
          ex.abort('FCGI_ABORT_REQUEST')
        }
        return
      }
      case RecordType.DATA:
        return // only the FILTER role reads FCGI_DATA; we are a RESPONDER
      case RecordType.GET_VALUES: {
        if (requestId !== 0) throw new ProtocolError('FPM_ERR_PROTOCOL_RECORD', `FCGI_GET_VALUES with request id ${requestId} (must be 0)`)
        const names: string[] = []
        decodeParams(content, names)
        const answer: Array<[string, string]> = []
        for (let i = 0; i < names.length; i += 2) {
          const value = GET_VALUES_ANSWERS[names[i]!]
          if (value !== undefined) answer.push([names[i]!, value])
        }
        this.#write([buildGetValuesResult(answer)])
        return
      }
      case RecordType.END_REQUEST:
      case RecordType.STDOUT:
      case RecordType.STDERR:
      case RecordType.GET_VALUES_RESULT:
      case RecordType.UNKNOWN_TYPE:
        throw new ProtocolError('FPM_ERR_PROTOCOL_RECORD', `unexpected record type ${type} from the web server`)
      default:
        // spec §4.2: unknown management record types get FCGI_UNKNOWN_TYPE
        this.#write([buildUnknownType(type)])
    }
  }

  #onBegin (requestId: number, content: Buffer): void {
    if (requestId === 0) throw new ProtocolError('FPM_ERR_PROTOCOL_RECORD', 'FCGI_BEGIN_REQUEST with request id 0')
    const { role, flags } = parseBeginRequest(content)
    const existing = this.#exchanges.get(requestId)
    if (existing !== undefined) {
      throw new ProtocolError('FPM_ERR_PROTOCOL_SEQUENCE', `duplicate FCGI_BEGIN_REQUEST for request id ${requestId} still in progress`)
    }
    const keepConn = (flags & FCGI_KEEP_CONN) !== 0
    if (!keepConn || this.#closeAfterNext) this.#closeWhenIdle = true
    if (role !== Role.RESPONDER) {
      this.#inputOutstanding = true // its params and input may still come
      this.#write([frameEndOnly(requestId, 0, ProtocolStatus.UNKNOWN_ROLE)])
      this.#maybeClose()
      return
    }
    if (this.#exchanges.size >= MAX_REQUESTS_PER_CONNECTION) {
      this.#write([frameEndOnly(requestId, 0, ProtocolStatus.OVERLOADED)])
      return
    }
    this.#exchanges.set(requestId, new Exchange(this, requestId, keepConn))
  }

  // ---- bytes out ----

  /** Returns false when the socket buffer is full (wait for onDrain). */
  writeStdout (requestId: number, head: string | null, body: Uint8Array | string | null, end: boolean, appStatus: number): boolean {
    return this.#write(frameStdout(requestId, head, body, end, appStatus))
  }

  writeEnd (requestId: number, appStatus: number): boolean {
    return this.#write([frameEnd(requestId, appStatus)])
  }

  writeStderr (requestId: number, text: string): boolean {
    return this.#write([frameStderr(requestId, text)])
  }

  #write (bufs: Uint8Array[]): boolean {
    const socket = this.#socket
    if (socket.destroyed || socket.writableEnded) return true
    if (bufs.length === 1) return socket.write(bufs[0]!)
    socket.cork()
    let ok = true
    for (const b of bufs) ok = socket.write(b)
    socket.uncork()
    return ok
  }

  /** Drops the connection (the server stops): `graceful` ends it after what is queued is written, else destroys it now. */
  drop (graceful: boolean): void {
    if (graceful) this.#endThenDestroy(DROP_LINGER_MS)
    else this.#socket.destroy()
  }

  /**
   * Ends the socket after what is queued is written; destroys it if the peer has not closed `afterMs`
   * later (or at an earlier limit already set).
   */
  #endThenDestroy (afterMs: number): void {
    this.#socket.end()
    const deadlineMs = performance.now() + afterMs
    if (this.#lingerTimer !== null) {
      if (this.#lingerDeadlineMs <= deadlineMs) return
      clearTimeout(this.#lingerTimer)
    }
    this.#lingerDeadlineMs = deadlineMs
    this.#lingerTimer = setTimeout(() => { this.#socket.destroy() }, afterMs).unref()
  }

  /** Runs `fn` once the socket has drained (or at once if it has been closed). */
  onDrain (fn: () => void): void {
    if (this.#socket.destroyed) { fn(); return }
    if (this.#drainWaiters === null) {
      this.#drainWaiters = []
      this.#socket.on('drain', () => { this.#onDrainEvent() })
    }
    this.#drainWaiters.push(fn)
  }

  #onDrainEvent (): void {
    const waiters = this.#drainWaiters
    if (waiters === null || waiters.length === 0) return
    this.#drainWaiters = []
    for (const fn of waiters) fn()
  }

  // ---- lifecycle ----

  /** Called by an Exchange once its response ended and its input is complete. */
  exchangeFinished (ex: Exchange): void {
    if (this.#exchanges.get(ex.requestId) === ex) this.#exchanges.delete(ex.requestId)
    if (!ex.inputEnded) this.#inputOutstanding = true
    this.checkBodyBackpressure()
    this.#maybeClose()
  }

  /** The response on this connection is broken: close it once nothing else is in flight. */
  closeWhenIdle (): void {
    this.#closeWhenIdle = true
    this.#maybeClose()
  }

  /**
   * A pm.accept = threads thread leaves: the connection closes once its request in flight is answered,
   * or, idle, once the next one is: the web server may be sending it right now (closing an idle kept
   * connection races with that), and a new connection's first request is on its way. One that brings
   * nothing within `idleMs` is closed then.
   */
  closeAfterRequest (idleMs: number): void {
    if (this.#exchanges.size > 0) {
      this.closeWhenIdle()
      return
    }
    this.#closeAfterNext = true
    setTimeout(() => { this.closeWhenIdle() }, idleMs).unref()
  }

  #maybeClose (): void {
    if (!this.#closeWhenIdle || this.#exchanges.size > 0 || this.#ending) return
    this.#ending = true
    // spec §3.5: without FCGI_KEEP_CONN the application closes the connection after END_REQUEST.
    // Everything written and every input complete (nginx's case): close now, as php-fpm does; the
    // kernel still delivers what was written. Else end() flushes what is queued and waits for the
    // peer (closing with unread input would reset the connection and could lose the response);
    // a peer that never closes its side is destroyed after a delay.
    if (!this.#inputOutstanding && this.#socket.writableLength === 0) {
      this.#socket.destroy()
      return
    }
    this.#endThenDestroy(CLOSE_LINGER_MS)
  }

  /**
   * Stops reading the socket while the streamed bodies of its requests wait for their workers.
   * Never while a handler waits for body bytes that have not arrived: with multiplexing they may
   * sit behind the body of a request still queued for a thread (or whose handler does not read
   * yet), and a paused socket would then block both requests for good.
   */
  checkBodyBackpressure (): void {
    let queued = 0
    let starving = false
    for (const ex of this.#exchanges.values()) {
      queued += ex.queuedBodyBytes
      if (ex.isStarving) starving = true
    }
    if (!this.#paused && queued > BODY_QUEUE_HIGH_WATER_BYTES && !starving) {
      this.#paused = true
      this.#socket.pause()
    } else if (this.#paused && (queued <= BODY_QUEUE_HIGH_WATER_BYTES / 2 || starving)) {
      this.#paused = false
      this.#socket.resume()
      for (const ex of this.#exchanges.values()) ex.inputResumed()
    }
  }

  #onClose (): void {
    if (this.#lingerTimer !== null) {
      clearTimeout(this.#lingerTimer)
      this.#lingerTimer = null
    }
    if (this.#exchanges.size > 0) {
      for (const ex of this.#exchanges.values()) ex.abort('connection closed')
      this.#exchanges.clear()
    }
    this.#onDrainEvent()
    this.#onClosed(this)
  }
}
