// A pool's access log (php's access.log, fpm_log.c; php-fpm.md §6): one line per finished request,
// in access.format (compiled once by access-format.ts), appended to the pool's file (log-file.ts:
// asynchronous, coalesced, reopened on SIGUSR1).
//
// The server keeps nothing for this when the pool has no access.log. When it has one, each request
// gets an AccessRecord at BEGIN_REQUEST (exchange.ts), which keeps references to what the request
// had anyway: the decoded params, the CGI head that was sent, the worker's usage numbers. Fields
// are read lazily, so a format pays only for its own specifiers.
//
// When a line is written, as php does it, and where threads change that:
// - php writes it when the script ends, after the response (and after the code that follows
//   fastcgi_finish_request()). Here: once the response has ended and the handler's task has
//   settled (its waitUntil work included); a request no thread ran, when its response has ended.
//   A request that hit request_terminate_timeout is written with its 504 at once (php kills the
//   worker and writes nothing; nginx logs its 502).
// - Requests node-fpm answers itself (404, 403, 408, 413, 431, 503, 504) are written too, as
//   php writes its own 404/403.
// - A request the web server aborted before any response existed gets status 499 (nginx's "client
//   closed request"): php's status would be whatever the script had set by then.
// - %d and %t count from BEGIN_REQUEST, which includes the wait in the pool's queue (php counts
//   from the accept(), after the wait in the listen backlog).
// - Bytes: params and headers are latin1 strings (one char per byte), so the line is written as
//   latin1, byte for byte as php writes it; the format and suppress paths (UTF-8 in the config
//   file) are turned into the same byte strings first.

import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { AccessLogConfig, PoolConfig } from '../config/types.ts'
import type { WorkerResult } from '../common/messages.ts'
import { valueAt } from '../common/params-shape.ts'
import { compileAccessFormat, ACCESS_LOG_BUFFER, type AccessEntry, type AccessFormatter } from './access-format.ts'
import { LogFile } from './log-file.ts'
import type { Logger } from './logger.ts'

/** %s of a request the web server aborted before any response was made (nginx's 499). */
export const ABORTED_STATUS = 499
/** close() waits at most this long for the lines of requests still in flight (a fast stop settles them within ms). */
export const CLOSE_WAIT_MS = 2000

/** What the server knows of a request when its line is written (implemented by server/exchange.ts). */
export interface AccessFacts {
  /** The resolved script or handler module ('' when none was found). */
  readonly script: string
  /** The thread that ran it (0: none did). */
  readonly threadId: number
}

export class AccessLog {
  /** The pool's name as a byte string (%n). */
  readonly pool: string
  readonly file: LogFile
  readonly #format: AccessFormatter
  readonly #suppress: ReadonlySet<string> | null
  readonly #log: Logger
  #truncatedNoticed = false
  /** Records begun and not ended: close() waits for their lines. */
  #inFlight = 0
  #onIdle: (() => void) | null = null

  /**
   * The pool's access log, or null when it has none. Opens (creates, 0600) the file now: throws
   * FpmError FPM_ERR_LOG_OPEN ("failed to open access log (path)"), which fails the start-up as in php.
   */
  static open (config: PoolConfig, log: Logger): AccessLog | null {
    const path = config.access.log
    if (path === null || path === '') return null
    const compiled = compileAccessFormat(toBytes(config.access.format ?? ''))
    // validate.ts already refused a bad format for a pool with an access.log.
    if (!compiled.ok) throw new Error(`[pool ${config.name}] access.format: ${compiled.reason}`)
    const file = LogFile.open(path, { kind: 'access log', owner: config.name, mode: 0o600, encoding: 'latin1', onError: onWriteTrouble(log) })
    return new AccessLog(config, compiled.format, file, log)
  }

  private constructor (config: PoolConfig, format: AccessFormatter, file: LogFile, log: Logger) {
    this.pool = toBytes(config.name)
    this.file = file
    this.#format = format
    const paths = config.access.suppressPaths
    this.#suppress = paths.length === 0 ? null : new Set(paths.map(toBytes))
    this.#log = log
  }

  /** A new request (BEGIN_REQUEST) from the FastCGI client at `peer` (Connection.peer). */
  begin (peer: string): AccessRecord {
    this.#inFlight++
    return new AccessRecord(this, peer)
  }

  /** Writes the line of a finished request (AccessRecord.finish; once: later calls do nothing). */
  write (record: AccessRecord, facts: AccessFacts): void {
    if (!record.end(facts)) return
    if (--this.#inFlight === 0 && this.#onIdle !== null) this.#onIdle()
    // Nothing arrived but a BEGIN_REQUEST (the connection broke during the params): no request.
    if (!record.isRequest) return
    let line: string
    try {
      if (this.#suppress !== null && this.#suppressed(record)) return
      line = this.#format(record)
    } catch (err) {
      // A bug here must not break the request's connection: say it, lose the line.
      this.#log.error({ err }, `access log line not written: ${(err as Error).message}`)
      return
    }
    if (line === '') return // php writes nothing for an empty line
    if (line.length > ACCESS_LOG_BUFFER) {
      line = line.slice(0, ACCESS_LOG_BUFFER)
      // php says it for every such line; once is enough to know the format is too long.
      if (!this.#truncatedNoticed) {
        this.#truncatedNoticed = true
        this.#log.info(`the log buffer is full (${ACCESS_LOG_BUFFER}). The access log request has been truncated.`)
      }
    }
    this.file.write(line + '\n')
  }

  /**
   * access.suppress_path (php 8.2's fpm_access_log_suppress): only a successful (2xx) GET or HEAD
   * without a query string and without a request body, whose %r is exactly one of the paths.
   */
  #suppressed (r: AccessRecord): boolean {
    if (r.query !== '') return false
    const method = r.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const status = r.status
    if (status < 200 || status > 299) return false
    if (r.contentLength > 0) return false
    return this.#suppress?.has(r.uri) === true
  }

  /**
   * Shutdown: waits for the lines of the requests still in flight (a fast stop settles the requests
   * its threads were running a little after the pool is destroyed), at most CLOSE_WAIT_MS, then
   * writes what is queued and closes the file.
   */
  async close (): Promise<void> {
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#onIdle = resolve
        timer = setTimeout(resolve, CLOSE_WAIT_MS)
      })
      clearTimeout(timer)
      this.#onIdle = null
    }
    await this.file.close()
  }
}

/**
 * One request's line, filled in as the request goes (exchange.ts) and read by the formatter: it is
 * the AccessEntry. Params are the flat decoded array [name0, value0, ...] the exchange made anyway.
 */
export class AccessRecord implements AccessEntry {
  readonly pool: string
  readonly startedAtMs: number
  readonly #log: AccessLog
  readonly #peer: string
  readonly #t0: number
  #params: readonly (string | number)[] | null = null
  #paramsText = ''
  /** The CGI head of the response that was sent; null: none (yet). */
  #head: string | null = null
  /** The handler's head when none was sent (the web server had aborted). */
  #unsentHead: string | null = null
  #usage: WorkerResult['usage'] = undefined
  #ended = false
  #durationUs = 0
  #script = ''
  #threadId = 0

  constructor (log: AccessLog, peer: string) {
    this.pool = log.pool
    this.#log = log
    this.#peer = peer
    this.startedAtMs = Date.now()
    this.#t0 = performance.now()
  }

  /** The request's params, kept (not copied): flat pairs, or names only whose values `text` holds (fastcgi/params.ts decodeParamNames). */
  setParams (params: readonly (string | number)[], text: string): void {
    this.#params = params
    this.#paramsText = text
  }

  /** The CGI head written to the web server (the first one counts). */
  sent (head: string): void { this.#head ??= head }

  /** The worker's result: its usage numbers, and the head of a response the web server no longer wanted. */
  settled (result: WorkerResult | null): void {
    if (result === null) return
    this.#usage = result.usage
    if (result.response !== null) this.#unsentHead = result.response.head
  }

  /** The request is over: its line is written now (once). */
  finish (facts: AccessFacts): void {
    this.#log.write(this, facts)
  }

  /** Marks the end (once): false if it had ended already. */
  end (facts: AccessFacts): boolean {
    if (this.#ended) return false
    this.#ended = true
    this.#durationUs = Math.round((performance.now() - this.#t0) * 1000)
    this.#script = facts.script
    this.#threadId = facts.threadId
    return true
  }

  get ended (): boolean { return this.#ended }
  /** Its params arrived, or the server answered it (431 for params too large). */
  get isRequest (): boolean { return this.#params !== null || this.#head !== null }

  // ---- AccessEntry ----

  /** %R: the FastCGI client's address (the web server: php's fcgi_get_last_client_ip), '' for a unix socket. */
  get remoteAddr (): string {
    const peer = this.#peer
    if (peer === 'unix') return ''
    const colon = peer.lastIndexOf(':') // Connection.peer is `${address}:${port}`
    return colon === -1 ? peer : peer.slice(0, colon)
  }

  get method (): string { return this.#param('REQUEST_METHOD') ?? '' }
  get uri (): string { return this.#param('SCRIPT_NAME') ?? '' }
  get query (): string { return this.#param('QUERY_STRING') ?? '' }

  /**
   * %f: the resolved script (a file-system path: text, made bytes), else the SCRIPT_FILENAME asked
   * for (bytes already; php logs its path_translated for a 404).
   */
  get script (): string {
    return this.#script !== '' ? toBytes(this.#script) : this.#param('SCRIPT_FILENAME') ?? this.#param('PATH_TRANSLATED') ?? ''
  }

  get status (): number {
    const head = this.#head ?? this.#unsentHead
    return head === null ? ABORTED_STATUS : statusOf(head)
  }

  get loggedAtMs (): number { return this.startedAtMs + this.#durationUs / 1000 }
  get durationUs (): number { return this.#durationUs }

  get cpuUserPercent (): number { return this.#cpuPercent(this.#usage?.cpuUserUs ?? 0) }
  get cpuSystemPercent (): number { return this.#cpuPercent(this.#usage?.cpuSystemUs ?? 0) }
  get cpuPercent (): number { return this.#cpuPercent((this.#usage?.cpuUserUs ?? 0) + (this.#usage?.cpuSystemUs ?? 0)) }

  /** php: the CPU time of the request over its duration (the same one %d shows), in percent. */
  #cpuPercent (cpuUs: number): number {
    return this.#durationUs > 0 ? cpuUs / this.#durationUs * 100 : 0
  }

  get memoryBytes (): number { return this.#usage?.heapBytes ?? 0 }

  /** %l: php's atol(CONTENT_LENGTH): leading digits, 0 when there are none. */
  get contentLength (): number {
    const m = /^\s*([+-]?\d+)/.exec(this.#param('CONTENT_LENGTH') ?? '')
    return m === null ? 0 : Number(m[1])
  }

  get pid (): number { return this.#threadId }

  /** %u: php's auth user: the name in an `Authorization: Basic` header (php_handle_auth_data). */
  get user (): string {
    const auth = this.#param('HTTP_AUTHORIZATION')
    if (auth === undefined || auth.length < 6 || auth.slice(0, 6).toLowerCase() !== 'basic ') return ''
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('latin1')
    const colon = decoded.indexOf(':')
    if (colon === -1) return ''
    // php keeps it as a C string: it ends at a NUL.
    const nul = decoded.indexOf('\0')
    return decoded.slice(0, nul !== -1 && nul < colon ? nul : colon)
  }

  // Methods, not arrow properties: no closures per request.
  params (name: string): string | undefined { return this.#param(name) }

  responseHeaders (name: string): string | undefined {
    const head = this.#head ?? this.#unsentHead
    return head === null ? undefined : headerOf(head, name)
  }

  /** The last value of param `name` (php's fcgi hash keeps the last one). */
  #param (name: string): string | undefined {
    const p = this.#params
    if (p === null) return undefined
    for (let i = p.length - 2; i >= 0; i -= 2) if (p[i] === name) return valueAt(p, i + 1, undefined, this.#paramsText)
    return undefined
  }
}

/** True when `access` has a log whose format reads the worker's usage numbers (%C, %M). */
export function accessLogMeasuresUsage (access: AccessLogConfig): boolean {
  if (access.log === null || access.log === '' || access.format === null) return false
  const f = access.format
  for (let i = f.indexOf('%'); i !== -1 && i < f.length - 1; i = f.indexOf('%', i)) {
    i++
    while (f[i] === '{') {
      const close = f.indexOf('}', i)
      if (close === -1) return false
      i = close + 1
    }
    const letter = f[i]
    if (letter === 'C' || letter === 'M') return true
    i++ // past the letter (and past the second % of %%)
  }
  return false
}

/** A CGI head's status: its `Status:` line, else 200 (CGI's default). */
function statusOf (head: string): number {
  let at = 0
  if (!head.startsWith('Status: ')) {
    at = head.indexOf('\r\nStatus: ')
    if (at === -1) return 200
    at += 2
  }
  const code = Number.parseInt(head.slice(at + 8, at + 11), 10)
  return Number.isNaN(code) ? 200 : code
}

/**
 * php's %{Name}o: the first header line that contains `name` and has ': ' right after its first
 * name.length characters (so, in practice, the header called exactly `name`, case-sensitive), with a
 * non-empty value. php's header list has no Status line: the status is not a header there.
 */
function headerOf (head: string, name: string): string | undefined {
  const n = name.length
  let start = 0
  while (start < head.length) {
    let end = head.indexOf('\r\n', start)
    if (end === -1) end = head.length
    if (end === start) break // the empty line ends the head
    const len = end - start
    if (len > n + 2 && head.charCodeAt(start + n) === 58 /* : */ && head.charCodeAt(start + n + 1) === 32 &&
      !head.startsWith('Status: ', start)) {
      const line = head.slice(start, end)
      if (line.includes(name)) return line.slice(n + 2)
    }
    start = end + 2
  }
  return undefined
}

/** UTF-8 text (the config file) as a byte string: one char per byte, like decoded params. */
function toBytes (text: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1')
}

/** Write failures of the access log: one error per episode, one line when it works again. */
function onWriteTrouble (log: Logger): (file: LogFile, err: Error | null, lost: number) => void {
  return (file, err, lost) => {
    if (err !== null) {
      log.error({ err, path: file.path }, `unable to write to the access log '${file.path}': ${err.message}; access log lines are lost until it works again`)
    } else {
      log.info({ path: file.path, lost }, `writing to the access log '${file.path}' works again; ${lost} line${lost === 1 ? ' was' : 's were'} lost`)
    }
  }
}
