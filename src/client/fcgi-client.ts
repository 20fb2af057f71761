// A FastCGI client: the web-server side of the protocol (what nginx's fastcgi_pass and php's
// `cgi-fcgi` do). Used by `node-fpm request`, by the tests and by anything that wants to talk to a
// FastCGI responder (node-fpm, php-fpm) without a web server in front.
//
// One FcgiConnection is one socket. Requests are sent with FCGI_KEEP_CONN by default and may be
// multiplexed: each gets its own request id (spec §3.3), and records of different requests may
// interleave in both directions. A server that cannot multiplex (php-fpm says FCGI_MPXS_CONNS=0)
// must be sent one request at a time per connection.
//
// This is not a codec: framing and parsing come from src/fastcgi/. It is not the load generator
// either (src/bench/load-generator.ts keeps its own allocation-free loop on the same codec).

import { Buffer } from 'node:buffer'
import net from 'node:net'
import type { Socket } from 'node:net'
import { FpmError } from '../common/errors.ts'
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role, STREAM_RECORD_LEN } from '../fastcgi/constants.ts'
import { decodeParams, encodeParams } from '../fastcgi/params.ts'
import { RecordParser } from '../fastcgi/record-parser.ts'
import { buildStreamEnd, frameChunks } from '../fastcgi/record-writer.ts'
import { buildAbortRequest, buildBeginRequest, buildGetValues, parseEndRequest } from '../fastcgi/records.ts'
import { formatClientAddress, parseClientAddress } from './address.ts'
import type { ClientAddress } from './address.ts'

export interface FcgiRequest {
  /**
   * FastCGI params (CGI variables). Names and values are byte strings: each char is one byte
   * (latin1), as the codec encodes them. buildCgiParams() produces such strings from Unicode input.
   */
  params: Record<string, string> | [string, string][]
  /** Request body, sent as FCGI_STDIN. An AsyncIterable is streamed, never held whole. */
  body?: Uint8Array | AsyncIterable<Uint8Array> | null
  /** FastCGI role (spec §6), default Role.RESPONDER. */
  role?: number
}

export interface FcgiResponse {
  /** From the `Status:` CGI header; 302 for a `Location:` without Status; else 200. */
  status: number
  /** The reason phrase of the Status header, or the standard one for the status. */
  statusText: string
  /** CGI response headers in order, without `Status`. Names as sent, values latin1-decoded. */
  headers: [string, string][]
  /** STDOUT after the CGI header block (empty when onStdout was given). */
  body: Buffer
  /** FCGI_STDERR, decoded as UTF-8. */
  stderr: string
  /** appStatus of END_REQUEST (the exit status of a CGI program; php-fpm sends 0). */
  appStatus: number
  /** protocolStatus of END_REQUEST: always REQUEST_COMPLETE (0) here, other values reject. */
  protocolStatus: number
  /** The whole STDOUT, headers included (only the header block when onStdout was given). */
  raw: Buffer
  /** The request id that was used. */
  requestId: number
}

export interface RequestOptions {
  /** Send FCGI_KEEP_CONN (default true on FcgiConnection.request, false for fcgiRequest). Without it the server closes the connection after this request, and so does the client. */
  keepConn?: boolean
  /** Aborting sends FCGI_ABORT_REQUEST and rejects the request (code FPM_ERR_CLIENT). */
  signal?: AbortSignal
  /** Time limit for the whole request, until END_REQUEST (ms); 0 or absent: none. Like signal on expiry. */
  timeoutMs?: number
  /**
   * Streams STDOUT as it arrives: each call gets a new chunk (the header block included) that the
   * callback may keep. The response is then not accumulated: `body` is empty and `raw` holds only
   * the header block (still parsed for `status` and `headers`).
   */
  onStdout?: (chunk: Buffer) => void
  /** Use this request id (1..65535) instead of the next free one. It must not be in flight. */
  requestId?: number
}

export interface ConnectOptions {
  /** Connect timeout in ms (default 10000; 0: none). */
  timeoutMs?: number
}

function clientError (message: string, cause?: unknown): FpmError {
  return new FpmError('FPM_ERR_CLIENT', message, cause === undefined ? undefined : { cause })
}

const PROTOCOL_STATUS_NAMES: Record<number, string> = {
  [ProtocolStatus.CANT_MPX_CONN]: 'FCGI_CANT_MPX_CONN (the server does not multiplex requests on one connection)',
  [ProtocolStatus.OVERLOADED]: 'FCGI_OVERLOADED (the server is out of resources)',
  [ProtocolStatus.UNKNOWN_ROLE]: 'FCGI_UNKNOWN_ROLE (the server does not play this role)'
}

/** One request in flight (or aborted and waiting for its END_REQUEST, so that its id stays reserved). */
interface Pending {
  readonly id: number
  readonly keepConn: boolean
  readonly onStdout: ((chunk: Buffer) => void) | undefined
  /** Accumulated STDOUT (the header block only in onStdout mode, until it is complete). */
  stdout: Buffer[]
  stdoutLen: number
  /** Total STDOUT bytes, for error messages. */
  stdoutSeen: number
  /** onStdout mode: the header block is complete. */
  headDone: boolean
  stderr: Buffer[]
  /** Settled (resolved, rejected or aborted); records that still arrive are dropped. */
  settled: boolean
  resolve: (res: FcgiResponse) => void
  reject: (err: Error) => void
  cleanup: (() => void) | null
}

export class FcgiConnection {
  readonly #socket: Socket
  readonly #address: string
  readonly #parser: RecordParser
  readonly #pending = new Map<number, Pending>()
  readonly #valueWaiters: Array<{ resolve: (v: Record<string, string>) => void, reject: (e: Error) => void }> = []
  #drainWaiters: Array<() => void> = []
  #nextId = 1
  #closed = false
  /** A request without keep-conn was sent: the server will close after it, no new request may start. */
  #lastRequest = false
  #error: Error | null = null
  #closeWaiter: Promise<void>

  private constructor (socket: Socket, address: string) {
    this.#socket = socket
    this.#address = address
    this.#parser = new RecordParser({ onRecord: (type, requestId, content) => { this.#onRecord(type, requestId, content) } })
    this.#closeWaiter = new Promise(resolve => socket.once('close', () => { resolve() }))
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#parser.push(chunk)
      } catch (err) {
        this.#fail(clientError(`protocol error from ${this.#address}: ${(err as Error).message}`, err))
        socket.destroy()
      }
    })
    socket.on('drain', () => { this.#wakeDrainWaiters() })
    socket.on('error', (err) => {
      this.#error ??= err
    })
    socket.on('close', () => {
      this.#closed = true
      this.#wakeDrainWaiters()
      const err = this.#error
      this.#fail(err !== null
        ? clientError(`connection to ${this.#address} failed: ${err.message}`, err)
        : null)
    })
  }

  /** Connects to `address` (see parseClientAddress). Rejects with code FPM_ERR_CLIENT. */
  static async connect (address: string | ClientAddress, opts: ConnectOptions = {}): Promise<FcgiConnection> {
    const target = typeof address === 'string' ? parseClientAddress(address) : address
    const name = formatClientAddress(target)
    const timeoutMs = opts.timeoutMs ?? 10_000
    return await new Promise((resolve, reject) => {
      const socket = net.connect(target)
      let timer: NodeJS.Timeout | null = null
      const onError = (err: Error): void => {
        if (timer !== null) clearTimeout(timer)
        socket.destroy()
        reject(clientError(`cannot connect to ${name}: ${err.message}`, err))
      }
      socket.once('error', onError)
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          socket.off('error', onError)
          socket.destroy()
          reject(clientError(`cannot connect to ${name}: timed out after ${timeoutMs} ms`))
        }, timeoutMs)
      }
      socket.once('connect', () => {
        if (timer !== null) clearTimeout(timer)
        socket.off('error', onError)
        if ('host' in target) socket.setNoDelay(true)
        resolve(new FcgiConnection(socket, name))
      })
    })
  }

  /** True once the socket is closed (by either side); no request can be sent any more. */
  get closed (): boolean {
    return this.#closed || this.#socket.destroyed
  }

  /** Requests in flight (aborted ones whose END_REQUEST has not arrived included). */
  get inFlight (): number {
    return this.#pending.size
  }

  /**
   * Sends one request and resolves with the parsed response at END_REQUEST. Rejects (code
   * FPM_ERR_CLIENT) when the connection fails or closes first, on a protocol error, when the server
   * refuses the request (protocolStatus other than REQUEST_COMPLETE), when STDOUT is not a CGI
   * response, on abort or timeout.
   */
  async request (req: FcgiRequest, opts: RequestOptions = {}): Promise<FcgiResponse> {
    if (this.closed) throw clientError(`connection to ${this.#address} is closed`)
    if (this.#lastRequest) throw clientError('a request without keep-conn was sent on this connection: the server closes it after that request')
    if (opts.signal?.aborted === true) throw clientError('request aborted before it was sent', opts.signal.reason)
    // Encoded first: a param that cannot be encoded (RangeError) leaves nothing behind.
    const params = encodeParams(Array.isArray(req.params) ? req.params : Object.entries(req.params))
    const id = this.#allocateId(opts.requestId)
    const keepConn = opts.keepConn ?? true
    if (!keepConn) this.#lastRequest = true

    const { promise, resolve, reject } = Promise.withResolvers<FcgiResponse>()
    const p: Pending = {
      id,
      keepConn,
      onStdout: opts.onStdout,
      stdout: [],
      stdoutLen: 0,
      stdoutSeen: 0,
      headDone: false,
      stderr: [],
      settled: false,
      resolve,
      reject,
      cleanup: null
    }
    this.#pending.set(id, p)
    this.#watch(p, opts)

    // BEGIN_REQUEST + PARAMS stream (+ the empty STDIN when there is no body, + a small body) in one write.
    const parts: Uint8Array[] = [buildBeginRequest(id, req.role ?? Role.RESPONDER, keepConn ? FCGI_KEEP_CONN : 0)]
    if (params.length > 0) parts.push(...frameChunks(RecordType.PARAMS, id, params))
    parts.push(buildStreamEnd(RecordType.PARAMS, id))
    const body = req.body ?? null
    const small = body === null || (body instanceof Uint8Array && body.length <= STREAM_RECORD_LEN)
    if (small) {
      if (body !== null && body.length > 0) parts.push(...frameChunks(RecordType.STDIN, id, body))
      parts.push(buildStreamEnd(RecordType.STDIN, id))
    }
    this.#write(parts)
    if (!small) {
      this.#sendBody(p, body).catch((err: unknown) => {
        if (p.settled) return
        this.#abortPending(p, clientError(`request body failed: ${(err as Error).message}`, err))
      })
    }
    return await promise
  }

  /**
   * FCGI_GET_VALUES (spec §4.1): asks the server for the given variables (FCGI_MAX_CONNS,
   * FCGI_MAX_REQS, FCGI_MPXS_CONNS) and resolves with those it answered. Rejects (FPM_ERR_CLIENT)
   * after timeoutMs (default 10000; 0: none) or when the connection closes first.
   */
  async getValues (names: string[], opts: { timeoutMs?: number } = {}): Promise<Record<string, string>> {
    if (this.closed) throw clientError(`connection to ${this.#address} is closed`)
    const { promise, resolve, reject } = Promise.withResolvers<Record<string, string>>()
    const waiter = { resolve, reject }
    this.#valueWaiters.push(waiter)
    this.#write([buildGetValues(names)])
    const timeoutMs = opts.timeoutMs ?? 10_000
    if (timeoutMs <= 0) return await promise
    // A server that ignores GET_VALUES would leave the caller waiting for ever. The waiter stays
    // queued (answers come in order), it just no longer settles anything.
    const timer = setTimeout(() => {
      waiter.resolve = () => {}
      reject(clientError(`no FCGI_GET_VALUES_RESULT from ${this.#address} within ${timeoutMs} ms`))
    }, timeoutMs)
    try {
      return await promise
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Sends FCGI_ABORT_REQUEST for a request in flight and rejects it (code FPM_ERR_CLIENT). Its id
   * stays reserved until the server's END_REQUEST. Returns false when no such request is in flight.
   */
  abort (requestId: number, reason = 'request aborted'): boolean {
    const p = this.#pending.get(requestId)
    if (p === undefined || p.settled) return false
    this.#abortPending(p, clientError(reason))
    return true
  }

  /**
   * Closes the socket now. Requests in flight are rejected ("closed by the client").
   * The promise resolves when the socket is closed.
   */
  async close (): Promise<void> {
    if (!this.#socket.destroyed) {
      this.#fail(clientError(`connection to ${this.#address} closed by the client`))
      this.#socket.destroy()
    }
    await this.#closeWaiter
  }

  #allocateId (wanted: number | undefined): number {
    if (wanted !== undefined) {
      if (!Number.isInteger(wanted) || wanted < 1 || wanted > 65535) throw new RangeError(`requestId must be 1..65535, got ${wanted}`)
      if (this.#pending.has(wanted)) throw clientError(`request id ${wanted} is already in flight`)
      return wanted
    }
    if (this.#pending.size >= 65535) throw clientError('65535 requests already in flight on this connection')
    let id = this.#nextId
    while (this.#pending.has(id)) id = id === 65535 ? 1 : id + 1
    this.#nextId = id === 65535 ? 1 : id + 1
    return id
  }

  #watch (p: Pending, opts: RequestOptions): void {
    const { signal } = opts
    const timeoutMs = opts.timeoutMs ?? 0
    let timer: NodeJS.Timeout | null = null
    const onAbort = (): void => {
      const reason: unknown = signal?.reason
      const timedOut = reason instanceof Error && reason.name === 'TimeoutError'
      this.#abortPending(p, clientError(timedOut ? `request ${p.id} timed out` : `request ${p.id} aborted`, reason))
    }
    if (signal !== undefined) signal.addEventListener('abort', onAbort, { once: true })
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        this.#abortPending(p, clientError(`request ${p.id} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
    }
    if (signal !== undefined || timer !== null) {
      p.cleanup = () => {
        if (timer !== null) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
    }
  }

  /** Rejects `p`, tells the server with FCGI_ABORT_REQUEST and keeps the id until END_REQUEST. */
  #abortPending (p: Pending, err: Error): void {
    if (p.settled) return
    this.#settle(p)
    p.reject(err)
    if (this.closed) {
      this.#pending.delete(p.id)
      return
    }
    this.#write([buildAbortRequest(p.id)])
    // Without keep-conn the connection serves nothing else: no need to wait for the server.
    if (!p.keepConn && this.#pending.size === 1) this.#socket.destroy()
  }

  #settle (p: Pending): void {
    p.settled = true
    p.stdout = []
    p.stderr = []
    if (p.cleanup !== null) {
      p.cleanup()
      p.cleanup = null
    }
  }

  /** Writes whole records; returns false when the socket buffer is full (wait for #drain). */
  #write (parts: Uint8Array[]): boolean {
    const socket = this.#socket
    if (socket.destroyed || !socket.writable) return true
    if (parts.length === 1) return socket.write(parts[0]!)
    socket.cork()
    let ok = true
    for (const part of parts) ok = socket.write(part)
    socket.uncork()
    return ok
  }

  async #drain (): Promise<void> {
    if (this.closed) return
    await new Promise<void>(resolve => { this.#drainWaiters.push(resolve) })
  }

  #wakeDrainWaiters (): void {
    const waiters = this.#drainWaiters
    if (waiters.length === 0) return
    this.#drainWaiters = []
    for (const w of waiters) w()
  }

  /** Streams a large body as STDIN records, waiting for 'drain' whenever the socket says so. */
  async #sendBody (p: Pending, body: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    const sendChunk = async (chunk: Uint8Array): Promise<void> => {
      for (let off = 0; off < chunk.length && !p.settled && !this.closed; off += STREAM_RECORD_LEN) {
        const end = Math.min(chunk.length, off + STREAM_RECORD_LEN)
        if (!this.#write(frameChunks(RecordType.STDIN, p.id, chunk.subarray(off, end)))) await this.#drain()
      }
    }
    if (body instanceof Uint8Array) {
      await sendChunk(body)
    } else {
      for await (const chunk of body) {
        // Stop reading the source once the server has answered, or the connection is gone.
        if (p.settled || this.closed) break
        await sendChunk(chunk)
      }
    }
    if (!p.settled && !this.closed) this.#write([buildStreamEnd(RecordType.STDIN, p.id)])
  }

  #onRecord (type: number, requestId: number, content: Buffer): void {
    if (requestId === 0) {
      if (type === RecordType.GET_VALUES_RESULT) {
        const flat: string[] = []
        decodeParams(content, flat)
        const values: Record<string, string> = {}
        for (let i = 0; i + 1 < flat.length; i += 2) values[flat[i]!] = flat[i + 1]!
        this.#valueWaiters.shift()?.resolve(values)
      }
      // FCGI_UNKNOWN_TYPE and anything else on id 0: nothing is waiting for it.
      return
    }
    const p = this.#pending.get(requestId)
    // Spec §3.3: records for ids that are not in flight are ignored.
    if (p === undefined) return
    switch (type) {
      case RecordType.STDOUT:
        if (!p.settled && content.length > 0) this.#onStdout(p, content)
        break
      case RecordType.STDERR:
        if (!p.settled && content.length > 0) p.stderr.push(content)
        break
      case RecordType.END_REQUEST:
        this.#onEnd(p, content)
        break
      default:
        // Nothing else is sent to a web server for a request; ignore it as the spec asks of unknown records.
        break
    }
  }

  // `content` is a view of a socket chunk (or the parser's own copy) that nobody writes to again:
  // it is kept as is, no copy (see RecordSink).
  #onStdout (p: Pending, chunk: Buffer): void {
    p.stdoutSeen += chunk.length
    if (p.onStdout === undefined) {
      p.stdout.push(chunk)
      p.stdoutLen += chunk.length
      return
    }
    if (!p.headDone) {
      p.stdout.push(chunk)
      p.stdoutLen += chunk.length
      const all = p.stdout.length === 1 ? chunk : Buffer.concat(p.stdout, p.stdoutLen)
      const end = findCgiHeadEnd(all)
      if (end >= 0) {
        p.headDone = true
        p.stdout = [all.subarray(0, end)]
        p.stdoutLen = end
      } else if (p.stdout.length > 1) {
        p.stdout = [all]
      }
    }
    p.onStdout(chunk)
  }

  #onEnd (p: Pending, content: Buffer): void {
    this.#pending.delete(p.id)
    if (!p.keepConn && this.#pending.size === 0) {
      // The server closes after this request; php-fpm even waits for our end of the socket
      // (fcgi_close: shutdown + read until EOF) before its worker takes the next connection.
      this.#socket.end()
    }
    if (p.settled) return
    const stdout = p.stdoutLen === 0 ? Buffer.alloc(0) : p.stdout.length === 1 ? p.stdout[0]! : Buffer.concat(p.stdout, p.stdoutLen)
    const stderr = p.stderr.length === 0 ? '' : Buffer.concat(p.stderr).toString('utf8')
    this.#settle(p)
    let end: { appStatus: number, protocolStatus: number }
    try {
      end = parseEndRequest(content)
    } catch (err) {
      p.reject(clientError(`protocol error from ${this.#address}: ${(err as Error).message}`, err))
      return
    }
    if (end.protocolStatus !== ProtocolStatus.REQUEST_COMPLETE) {
      const name = PROTOCOL_STATUS_NAMES[end.protocolStatus] ?? `unknown protocolStatus ${end.protocolStatus}`
      p.reject(clientError(`${this.#address} refused request ${p.id}: ${name}`))
      return
    }
    let parsed: ParsedCgiResponse
    try {
      parsed = parseCgiResponse(stdout)
    } catch (err) {
      const more = stderr === '' ? '' : ` (stderr: ${oneLine(stderr)})`
      p.reject(clientError(`${(err as Error).message}${more}`, err))
      return
    }
    p.resolve({
      status: parsed.status,
      statusText: parsed.statusText,
      headers: parsed.headers,
      body: p.onStdout === undefined ? parsed.body : Buffer.alloc(0),
      stderr,
      appStatus: end.appStatus,
      protocolStatus: end.protocolStatus,
      raw: stdout,
      requestId: p.id
    })
  }

  /** Rejects everything in flight; `err` null means the peer closed the connection. */
  #fail (err: Error | null): void {
    for (const p of this.#pending.values()) {
      if (!p.settled) {
        this.#settle(p)
        p.reject(err ?? clientError(`connection closed by ${this.#address} before the end of request ${p.id}` +
          ` (no END_REQUEST; ${p.stdoutSeen} bytes of STDOUT received)`))
      }
    }
    this.#pending.clear()
    const waiters = this.#valueWaiters.splice(0)
    for (const w of waiters) {
      w.reject(err ?? clientError(`connection closed by ${this.#address} before the answer to FCGI_GET_VALUES`))
    }
  }
}

function oneLine (s: string): string {
  const t = s.trim().replace(/\s*\n\s*/g, ' | ')
  return t.length > 300 ? t.slice(0, 300) + '...' : t
}

/**
 * One request on a connection of its own, without keep-conn (what nginx does by default):
 * connect, send, read the response, close.
 */
export async function fcgiRequest (
  address: string | ClientAddress,
  req: FcgiRequest,
  opts: Omit<RequestOptions, 'keepConn'> & { connectTimeoutMs?: number } = {}
): Promise<FcgiResponse> {
  const conn = await FcgiConnection.connect(address, { timeoutMs: opts.connectTimeoutMs ?? opts.timeoutMs })
  try {
    return await conn.request(req, { ...opts, keepConn: false })
  } finally {
    // After END_REQUEST the client already ended its side; destroy() stops waiting for the server's FIN.
    void conn.close()
  }
}

export interface CgiParamsOptions {
  /** Request target: path plus optional query, e.g. '/index.php?a=1'. Non-ASCII chars are sent as UTF-8. */
  uri: string
  /** Default 'GET'. */
  method?: string
  /** SCRIPT_FILENAME. Default: documentRoot + the decoded path when documentRoot is given, else the decoded path. */
  scriptFilename?: string
  /** DOCUMENT_ROOT (nginx's $document_root). Default ''. */
  documentRoot?: string
  /** HTTP request headers: each becomes HTTP_<NAME> (Content-Type and Content-Length become CONTENT_TYPE/CONTENT_LENGTH). */
  headers?: [string, string][]
  /** CONTENT_LENGTH. Default: the Content-Length header, else '' (as nginx sends for no body). */
  bodyLength?: number
  /** Added last: overrides any computed param. */
  extra?: Record<string, string>
  /** SERVER_PORT, default 80. */
  serverPort?: number
  /** REQUEST_SCHEME, default 'http' ('https' also sets HTTPS=on). */
  scheme?: 'http' | 'https'
}

/** A Unicode string as the byte string the codec expects: UTF-8 bytes, one char per byte. */
function bytes (s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

/** Decodes %XX escapes to bytes (as nginx's $uri does), keeping the result a byte string. */
function percentDecode (s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

/**
 * The CGI params a web server sends for an HTTP request, like nginx's fastcgi_params +
 * fastcgi.conf: REQUEST_METHOD, REQUEST_URI, SCRIPT_NAME, SCRIPT_FILENAME, QUERY_STRING,
 * DOCUMENT_URI, DOCUMENT_ROOT, SERVER_PROTOCOL, REQUEST_SCHEME, GATEWAY_INTERFACE,
 * SERVER_SOFTWARE, REMOTE_ADDR, REMOTE_PORT, SERVER_ADDR, SERVER_PORT, SERVER_NAME, CONTENT_TYPE,
 * CONTENT_LENGTH, REDIRECT_STATUS (php's cgi.force_redirect wants it), HTTP_HOST and the other
 * HTTP_* headers. Values are byte strings (see FcgiRequest.params).
 */
export function buildCgiParams (opts: CgiParamsOptions): Record<string, string> {
  const uri = bytes(opts.uri === '' ? '/' : opts.uri)
  const q = uri.indexOf('?')
  const rawPath = q < 0 ? uri : uri.slice(0, q)
  const query = q < 0 ? '' : uri.slice(q + 1)
  const path = percentDecode(rawPath)
  const documentRoot = opts.documentRoot === undefined ? '' : bytes(opts.documentRoot)
  const scriptFilename = opts.scriptFilename !== undefined
    ? bytes(opts.scriptFilename)
    : documentRoot !== '' ? documentRoot.replace(/\/+$/, '') + path : path
  const scheme = opts.scheme ?? 'http'
  const serverPort = opts.serverPort ?? (scheme === 'https' ? 443 : 80)

  const http = new Map<string, string>()
  let contentType = ''
  let contentLength = ''
  let host = ''
  for (const [name, value] of opts.headers ?? []) {
    const lower = name.toLowerCase()
    const v = bytes(value)
    if (lower === 'content-type') { contentType = v; continue }
    if (lower === 'content-length') { contentLength = v; continue }
    if (lower === 'host') host = v
    const key = 'HTTP_' + name.toUpperCase().replace(/-/g, '_')
    const prev = http.get(key)
    // Repeated headers are joined as nginx does: '; ' for Cookie, ', ' for the rest.
    http.set(key, prev === undefined ? v : prev + (lower === 'cookie' ? '; ' : ', ') + v)
  }
  if (opts.bodyLength !== undefined) contentLength = String(opts.bodyLength)
  if (host === '') {
    host = 'localhost'
    http.set('HTTP_HOST', host)
  }
  const serverName = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')

  const params: Record<string, string> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'node-fpm',
    QUERY_STRING: query,
    REQUEST_METHOD: (opts.method ?? 'GET').toUpperCase(),
    CONTENT_TYPE: contentType,
    CONTENT_LENGTH: contentLength,
    SCRIPT_FILENAME: scriptFilename,
    SCRIPT_NAME: path,
    REQUEST_URI: uri,
    DOCUMENT_URI: path,
    DOCUMENT_ROOT: documentRoot,
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_SCHEME: scheme,
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '0',
    SERVER_ADDR: '127.0.0.1',
    SERVER_PORT: String(serverPort),
    SERVER_NAME: serverName,
    REDIRECT_STATUS: '200'
  }
  if (scheme === 'https') params.HTTPS = 'on'
  for (const [k, v] of http) params[k] = v
  if (opts.extra !== undefined) {
    for (const [k, v] of Object.entries(opts.extra)) params[bytes(k)] = bytes(v)
  }
  return params
}

export interface ParsedCgiResponse {
  status: number
  statusText: string
  headers: [string, string][]
  body: Buffer
}

/**
 * Index of the first body byte of a CGI response (just after the empty line that ends the header
 * block; lines end with CRLF or LF), or -1 when the header block is not complete yet.
 */
export function findCgiHeadEnd (stdout: Uint8Array): number {
  let pos = 0
  for (;;) {
    const nl = stdout.indexOf(10, pos)
    if (nl < 0) return -1
    const lineLen = nl - pos - (nl > pos && stdout[nl - 1] === 13 ? 1 : 0)
    if (lineLen === 0) return nl + 1
    pos = nl + 1
  }
}

/**
 * Splits a CGI response (RFC 3875 §6) into status, headers and body. `Status: 404 Not Found` sets
 * the status (the header is not kept in `headers`); a `Location:` without Status means 302 (as nginx
 * does); else 200. Throws (code FPM_ERR_CLIENT) when there is no complete header block or a header
 * line is malformed.
 */
export function parseCgiResponse (stdout: Buffer): ParsedCgiResponse {
  const headEnd = findCgiHeadEnd(stdout)
  if (headEnd < 0) {
    throw clientError(stdout.length === 0
      ? 'malformed CGI response: empty STDOUT (no header block)'
      : 'malformed CGI response: the header block does not end with an empty line')
  }
  const headers: [string, string][] = []
  let status = 0
  let statusText = ''
  let hasLocation = false
  const head = stdout.toString('latin1', 0, headEnd)
  for (const line of head.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line
    if (l === '') continue
    const colon = l.indexOf(':')
    if (colon <= 0) throw clientError(`malformed CGI response: header line without a name: '${l.slice(0, 80)}'`)
    const name = l.slice(0, colon).trim()
    const value = l.slice(colon + 1).trim()
    const lower = name.toLowerCase()
    if (lower === 'status') {
      const m = /^(\d{3})(?:\s+(.*))?$/.exec(value)
      if (m === null) throw clientError(`malformed CGI response: bad Status header '${value.slice(0, 80)}'`)
      status = Number(m[1])
      statusText = m[2] ?? ''
      continue
    }
    if (lower === 'location') hasLocation = true
    headers.push([name, value])
  }
  if (status === 0) status = hasLocation ? 302 : 200
  // node:http (~20 ms to load) only when a reason phrase is missing: the server process imports
  // this module (the CLI's subcommands) but never parses a response.
  if (statusText === '') statusText = process.getBuiltinModule('node:http').STATUS_CODES[status] ?? ''
  return { status, statusText, headers, body: stdout.subarray(headEnd) }
}
