// FastCGI load generator, the engine of `node-fpm bench` and of bench/run.ts. It talks FastCGI
// straight to a server (node-fpm, php-fpm, any responder): no web server in between.
//
// Two loops:
//   closed (default)  N connections, each sending its next request as soon as the previous one's
//                     END_REQUEST arrives: the server's speed sets the rate. Latency runs from the
//                     request's write (from the connect without keep-conn).
//   open (rate > 0)   requests are scheduled at a fixed rate (R per second in all) whatever the
//                     responses do; each goes to the first free one of the N connections, or waits
//                     in a queue for one. Latency runs from the *scheduled* time, so the time a
//                     request waited behind a slow one is counted (no coordinated omission). At most
//                     maxOutstanding requests (queued + in flight) exist; a scheduled request beyond
//                     that is not sent and counts as a `dropped` error.
//
// Every response is checked (protocol status, CGI Status, optionally the body) and its latency goes
// into a perf_hooks (HdrHistogram) histogram in µs, 3 significant digits. Only what completes (or
// fails) during the measure counts; a warm-up comes first and in-flight requests are let finish
// after it, uncounted, so the server sees no aborted request.
//
// It shares the machine's cores with the server under test, so the loop is lean: the request bytes
// (BEGIN_REQUEST + PARAMS + empty PARAMS + STDIN... + empty STDIN) are built once and the same
// Buffer is written for every request of every connection (request id 1: one request at a time
// per connection); responses go through the codec's RecordParser and are checked in place, without
// building strings; one interval timer watches all timeouts.
//
// Not a general client (src/client/fcgi-client.ts is) and not a scenario runner (bench/run.ts).

import net from 'node:net'
import type { Socket } from 'node:net'
import { Buffer } from 'node:buffer'
import { createHistogram, performance } from 'node:perf_hooks'
import type { RecordableHistogram } from 'node:perf_hooks'
import { buildCgiParams, fcgiRequest } from '../client/fcgi-client.ts'
import { formatClientAddress, parseClientAddress } from '../client/address.ts'
import type { ClientAddress } from '../client/address.ts'
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role } from '../fastcgi/constants.ts'
import { encodeParams } from '../fastcgi/params.ts'
import { RecordParser } from '../fastcgi/record-parser.ts'
import { buildStreamEnd, frameChunks } from '../fastcgi/record-writer.ts'
import { buildBeginRequest } from '../fastcgi/records.ts'
import { takeReadsDirectly } from '../common/direct-reads.ts'
import { Pacer } from './pacer.ts'

export interface LoadOptions {
  /** FastCGI address: unix socket path, host:port, [v6]:port, port (see src/client/address.ts). */
  address: string
  /** Request URI (path and query), default '/'. */
  uri?: string
  /** SCRIPT_FILENAME; default: root + the URI's path when root is given, else the path. */
  script?: string
  /** DOCUMENT_ROOT. */
  root?: string
  /** HTTP method, default GET (POST when a body is given). */
  method?: string
  /** HTTP headers, sent as HTTP_* params. */
  headers?: [string, string][]
  /** More params, added last. */
  params?: Record<string, string>
  /** Request body sent with every request (CONTENT_TYPE application/octet-stream unless a header says otherwise). */
  body?: Uint8Array | null
  /** Shortcut: a body of this many bytes (a repeating printable pattern). Ignored when body is given. */
  dataSize?: number
  /** Connections, default 16. Closed loop: each has one request in flight. Open loop: at most one each too; the others wait in the queue. */
  connections?: number
  /** Measured duration in seconds, default 10. */
  duration?: number
  /** Warm-up before the measure, in seconds, default 1. Responses in the warm-up are not counted. */
  warmup?: number
  /** FCGI_KEEP_CONN (default true). false: a new connection per request, as nginx does by default. */
  keepConn?: boolean
  /** Open loop: requests per second in all, scheduled whatever the responses do. 0 or absent: closed loop. */
  rate?: number
  /** Open loop: most requests queued + in flight; a scheduled request beyond it counts as `dropped`. Default 1000. */
  maxOutstanding?: number
  /** Expected status (CGI Status header; 200 without one), default 200. */
  expectStatus?: number
  /** Expected body, exactly. */
  expectBody?: string | Uint8Array | null
  /** The body must equal the request body (for an echo script). */
  expectEcho?: boolean
  /** Per-request time limit in ms (until END_REQUEST, from the start or the scheduled time), default 10000. */
  timeoutMs?: number
  /** Send one request first and check it, failing with a detailed error (default true). */
  check?: boolean
  /** Called every progressIntervalMs during the run (for a live progress line). */
  onProgress?: (p: LoadProgress) => void
  /** Default 1000. */
  progressIntervalMs?: number
  /** Aborting ends the run early: the warm-up or the measure stops now, and the result covers what was measured. */
  signal?: AbortSignal
  /** Called when the measure begins and when it ends (then the drain), synchronously: e.g. to read the server's CPU time. */
  onMeasure?: (edge: 'start' | 'end') => void
}

export interface LoadProgress {
  phase: 'warmup' | 'measure' | 'drain'
  /** Seconds into the phase, and the phase's planned length (0 for the drain). */
  elapsed: number
  phaseDuration: number
  /** Requests completed during the measure so far. */
  requests: number
  /** Completions per second since the previous call (warm-up included). */
  recentRps: number
  /** p99 of the measure so far, ms (0 before the first completion). */
  p99: number
  errors: number
  inFlight: number
  /** Open loop: scheduled requests waiting for a free connection. */
  queued: number
}

export interface ErrorCounts {
  /** Connection could not be made (refused, no such socket, ...). */
  connect: number
  /** The connection broke before END_REQUEST, a malformed record or CGI head, protocolStatus other than REQUEST_COMPLETE. */
  protocol: number
  /** A status other than the expected one. */
  status: number
  /** A body other than the expected one. */
  body: number
  /** No END_REQUEST within timeoutMs (open loop: of the scheduled time, queued requests included). */
  timeout: number
  /** Open loop: a scheduled request not sent because maxOutstanding requests were already outstanding. */
  dropped: number
}

export interface LatencySummary {
  min: number
  mean: number
  stddev: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  /** The histogram's percentile spectrum, [percentile, ms] pairs in increasing order (HdrHistogram style). */
  percentiles: [number, number][]
}

export interface LoadResult {
  address: string
  uri: string
  script: string
  method: string
  /** 'closed': each connection sends its next request on END_REQUEST; 'open': requests at a fixed rate. */
  mode: 'closed' | 'open'
  /** Open loop: the requests per second asked for; null in a closed loop. */
  rate: number | null
  /** Open loop: the cap on queued + in-flight requests; null in a closed loop. */
  maxOutstanding: number | null
  connections: number
  keepConn: boolean
  requestBodyBytes: number
  /** Seconds actually measured (from the end of the warm-up to the stop). */
  duration: number
  warmup: number
  /** True when the run was stopped early (the signal): the figures cover `duration`. */
  stoppedEarly: boolean
  /** Responses completed during the measure (errors of kind status and body included). */
  requests: number
  /** requests / duration. */
  rps: number
  /** Connections that started at least one request during the measure (or had one in flight when it began). */
  connectionsUsed: number
  /**
   * Connections that got at least one response during the measure. Fewer than connectionsUsed means
   * the server left some connections waiting the whole time: php-fpm, for one, gives a kept
   * connection to one worker until the client closes it, so with keep-conn it serves only as many
   * connections as it has workers (the others time out).
   */
  connectionsServed: number
  /**
   * Latency of the completed requests, in ms: from the write (closed loop; the connect included
   * without keep-conn) or from the scheduled time (open loop) to END_REQUEST.
   */
  latency: LatencySummary
  /**
   * Open loop: how late the generator itself scheduled the requests after their due time, in ms
   * (part of every latency above; the same for every server only if small). null in a closed loop.
   */
  lateness: { p50: number, p99: number, max: number } | null
  errors: ErrorCounts & { total: number }
  /** The first message seen for each kind of error. */
  errorSamples: Partial<Record<keyof ErrorCounts, string>>
  /** Bytes written during the measure (whole requests, records and padding included). */
  bytesSent: number
  /** Bytes read from the sockets during the measure (all records, headers and padding included). */
  bytesReceived: number
  /** Bytes of STDOUT (the CGI response) during the measure. */
  stdoutBytes: number
  /**
   * CPU time of this load generator's process during the measure, in cores (user + system seconds
   * per second): it runs on the same machine as the server, so this is what it took from it.
   */
  clientCpu: number
}

type ErrorKind = keyof ErrorCounts

// The warm-up counts exactly as the measure does, into the same counters, which the measure's
// start resets: the hot functions then never meet a new branch or a new field value when it begins.
// Counting only during the measure deoptimized them there (V8 trusts a never-taken branch and a
// never-written field), which stalled the generator for 10-15 ms and put that into every
// server's p99 (php-fpm, open loop at 10k req/s: p99 3.6 -> 1.3-1.9 ms).
const PHASE_WARMUP = 0
const PHASE_MEASURE = 1
const PHASE_DRAIN = 2
const PHASE_DONE = 3

const CONNECT_BACKOFF_MS = 20
const DRAIN_MAX_MS = 5000
const DEFAULT_MAX_OUTSTANDING = 1000

/** Microseconds, 1 µs to an hour, 3 significant digits. */
function usHistogram (): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: 3_600_000_000, figures: 3 })
}

/** State shared by all connections of one run. */
class Run {
  /** PHASE_DONE until runLoad starts it: written before the first request, so never a constant to V8. */
  phase = PHASE_DONE
  readonly hist = usHistogram()
  /** Open loop: how late each request was scheduled after its due time, µs (the generator's own delay). */
  readonly lateness = usHistogram()
  /** Completed during the measure (the warm-up's until it begins). */
  requests = 0
  /** Completed in any phase (for the progress rate). */
  completed = 0
  bytesSent = 0
  bytesReceived = 0
  stdoutBytes = 0
  readonly errors: ErrorCounts = { connect: 0, protocol: 0, status: 0, body: 0, timeout: 0, dropped: 0 }
  readonly samples: Partial<Record<ErrorKind, string>> = {}
  inFlight = 0
  onIdle: (() => void) | null = null

  readonly target: ClientAddress
  readonly addressName: string
  readonly request: Buffer
  readonly keepConn: boolean
  readonly expectStatus: number
  readonly expectBody: Buffer | null
  readonly timeoutMs: number

  // Open loop (rate > 0): scheduled start times waiting for a connection (a ring buffer, oldest
  // first), and the connections waiting for a request (FIFO, so that every connection gets used).
  readonly rate: number
  readonly maxOutstanding: number
  readonly #queue: Float64Array
  #qHead = 0
  queued = 0
  readonly #idle: LoadConn[] = []
  /** Open loop, once the schedule started: sends every request already due (see the runner). */
  catchUp: (() => void) | null = null

  constructor (target: ClientAddress, request: Buffer, keepConn: boolean, expectStatus: number, expectBody: Buffer | null,
    timeoutMs: number, rate: number, maxOutstanding: number) {
    this.target = target
    this.addressName = formatClientAddress(target)
    this.request = request
    this.keepConn = keepConn
    this.expectStatus = expectStatus
    this.expectBody = expectBody
    this.timeoutMs = timeoutMs
    this.rate = rate
    this.maxOutstanding = maxOutstanding
    this.#queue = new Float64Array(rate > 0 ? maxOutstanding : 0)
  }

  error (kind: ErrorKind, message: string): void {
    if (this.phase > PHASE_MEASURE) return
    this.errors[kind]++
    this.samples[kind] ??= message
  }

  /** The measure begins: what the warm-up counted is forgotten (see PHASE_WARMUP). */
  beginMeasure (conns: readonly LoadConn[]): void {
    this.phase = PHASE_MEASURE
    this.hist.reset()
    this.lateness.reset()
    this.requests = 0
    this.bytesSent = 0
    this.bytesReceived = 0
    this.stdoutBytes = 0
    for (const kind of Object.keys(this.errors) as ErrorKind[]) this.errors[kind] = 0
    for (const kind of Object.keys(this.samples) as ErrorKind[]) delete this.samples[kind]
    for (const c of conns) c.beginMeasure()
  }

  /** A connection is free for its next request (closed loop: start it now). */
  connIdle (conn: LoadConn): void {
    if (this.phase >= PHASE_DRAIN) return
    if (this.rate === 0) {
      conn.start(performance.now())
      return
    }
    // A response just ended: requests due since the last timer go out now, not at the next one.
    this.catchUp?.()
    if (this.queued > 0) {
      const t = this.#queue[this.#qHead]!
      this.#qHead = (this.#qHead + 1) % this.#queue.length
      this.queued--
      conn.start(t)
    } else {
      this.#idle.push(conn)
    }
  }

  /** Open loop: one request due at time t (performance.now() scale), scheduled at `now`. */
  schedule (t: number, now: number): void {
    const lateUs = Math.round((now - t) * 1000)
    this.lateness.record(lateUs < 1 ? 1 : lateUs)
    if (this.inFlight + this.queued >= this.maxOutstanding) {
      this.error('dropped', `${this.maxOutstanding} requests outstanding (queued or in flight): the server is slower than ${this.rate} req/s`)
      return
    }
    const conn = this.#idle.shift()
    if (conn !== undefined) {
      conn.start(t)
    } else {
      this.#queue[(this.#qHead + this.queued) % this.#queue.length] = t
      this.queued++
    }
  }

  /** Open loop: queued requests older than the time limit fail as timeouts. */
  expireQueued (limit: number): void {
    while (this.queued > 0 && this.#queue[this.#qHead]! < limit) {
      this.#qHead = (this.#qHead + 1) % this.#queue.length
      this.queued--
      this.error('timeout', `no END_REQUEST within ${this.timeoutMs} ms of the scheduled time (still waiting for a free connection)`)
    }
  }

  /** End of the schedule: forget the queue, close the idle connections. */
  stopSchedule (): void {
    this.queued = 0
    for (const c of this.#idle.splice(0)) c.stop()
  }
}

// Lower-case "status:" for the in-place header scan.
const STATUS_NAME = [0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x3a]

/** One connection. */
class LoadConn {
  readonly #run: Run
  #socket: Socket | null = null
  readonly #parser: RecordParser
  #inFlight = false
  #startedAt = 0
  // response state
  #headDone = false
  #headBuf: Buffer | null = null
  #status = 0
  #bodyOffset = 0
  #bodyOk = true
  #failed = false
  #retryTimer: NodeJS.Timeout | null = null
  /** Got a response during the measure. */
  served = false
  /** Started a request during the measure (or had one in flight when it began). */
  used = false

  constructor (run: Run) {
    this.#run = run
    this.#parser = new RecordParser({ onRecord: (type, _id, content) => { this.#onRecord(type, content) } })
  }

  get inFlight (): boolean { return this.#inFlight }

  /** Used in the measure: a request in flight when it begins counts; served: only from now on. */
  beginMeasure (): void {
    this.used = this.#inFlight
    this.served = false
  }
  get startedAt (): number { return this.#startedAt }

  /** Starts a request whose latency counts from `t` (now, or its scheduled time). */
  start (t: number): void {
    if (this.#run.phase >= PHASE_DRAIN) return
    this.#startedAt = t
    this.#inFlight = true
    if (this.#run.phase <= PHASE_MEASURE) this.used = true
    this.#run.inFlight++
    if (this.#socket === null) this.#connect()
    else this.#send()
  }

  #connect (): void {
    const socket = net.connect(this.#run.target)
    this.#socket = socket
    this.#parser.reset()
    let connected = false
    socket.on('connect', () => {
      connected = true
      if ('host' in this.#run.target) socket.setNoDelay(true)
      if (socket === this.#socket) this.#send()
    })
    const onData = (chunk: Buffer): void => {
      if (socket !== this.#socket) return
      if (this.#run.phase <= PHASE_MEASURE) this.#run.bytesReceived += chunk.length
      try {
        this.#parser.push(chunk)
      } catch (err) {
        this.#fail('protocol', `protocol error: ${(err as Error).message}`)
      }
    }
    socket.on('data', onData)
    // The generator's CPU is taken from the server under test on the same machine: no stream work per read.
    takeReadsDirectly(socket, onData)
    socket.on('error', (err) => {
      if (socket !== this.#socket) return
      if (!connected) this.#fail('connect', `cannot connect to ${this.#run.addressName}: ${err.message}`)
      else this.#fail('protocol', `connection error: ${err.message}`)
    })
    socket.on('close', () => {
      if (socket !== this.#socket) return
      this.#socket = null
      if (this.#inFlight) this.#fail('protocol', 'connection closed by the server before END_REQUEST')
    })
  }

  #send (): void {
    this.#headDone = false
    this.#headBuf = null
    this.#status = 0
    this.#bodyOffset = 0
    this.#bodyOk = true
    this.#failed = false
    const run = this.#run
    if (run.phase <= PHASE_MEASURE) run.bytesSent += run.request.length
    this.#socket!.write(run.request)
  }

  /** Ends the request in flight with an error, drops the connection, and frees it for the next request. */
  #fail (kind: ErrorKind, message: string): void {
    if (!this.#inFlight) return
    this.#run.error(kind, message)
    this.#finish()
    this.#close()
    if (kind === 'connect') {
      // Do not spin on a server that is down.
      this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#run.connIdle(this) }, CONNECT_BACKOFF_MS)
    } else {
      this.#run.connIdle(this)
    }
  }

  timeout (): void {
    this.#fail('timeout', `no END_REQUEST within ${this.#run.timeoutMs} ms`)
  }

  #finish (): void {
    this.#inFlight = false
    const run = this.#run
    run.inFlight--
    if (run.inFlight === 0 && run.onIdle !== null) run.onIdle()
  }

  #close (): void {
    const socket = this.#socket
    this.#socket = null
    socket?.destroy()
  }

  stop (): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    this.#retryTimer = null
    this.#close()
  }

  #onRecord (type: number, content: Buffer): void {
    if (!this.#inFlight) return
    if (type === RecordType.STDOUT) {
      if (content.length > 0) this.#onStdout(content)
    } else if (type === RecordType.END_REQUEST) {
      this.#onEnd(content)
    }
    // STDERR and anything else: ignored (php writes notices there; they do not fail a request).
  }

  #onStdout (content: Buffer): void {
    const run = this.#run
    if (run.phase <= PHASE_MEASURE) run.stdoutBytes += content.length
    let body = content
    if (!this.#headDone) {
      let head = content
      if (this.#headBuf !== null) head = this.#headBuf = Buffer.concat([this.#headBuf, content])
      const end = this.#scanHead(head)
      if (end < 0) {
        if (this.#headBuf === null) this.#headBuf = Buffer.from(content)
        if (this.#headBuf.length > 65536) this.#failed = true
        return
      }
      this.#headDone = true
      this.#headBuf = null
      body = head.subarray(end)
    }
    const expect = run.expectBody
    if (expect !== null && this.#bodyOk && body.length > 0) {
      const off = this.#bodyOffset
      if (off + body.length > expect.length || body.compare(expect, off, off + body.length) !== 0) this.#bodyOk = false
    }
    this.#bodyOffset += body.length
  }

  /**
   * Finds the end of the CGI header block and reads the Status header, without making strings.
   * Returns the index of the first body byte, or -1 when the block is not complete.
   */
  #scanHead (buf: Buffer): number {
    let pos = 0
    const len = buf.length
    while (pos < len) {
      const nl = buf.indexOf(10, pos)
      if (nl < 0) return -1
      const lineEnd = nl > pos && buf[nl - 1] === 13 ? nl - 1 : nl
      if (lineEnd === pos) return nl + 1
      if (lineEnd - pos > 7) {
        let i = 0
        while (i < 7 && (buf[pos + i]! | 0x20) === STATUS_NAME[i]) i++
        if (i === 7) {
          let p = pos + 7
          while (buf[p] === 32 || buf[p] === 9) p++
          let code = 0
          let digits = 0
          while (digits < 3 && p < lineEnd && buf[p]! >= 48 && buf[p]! <= 57) { code = code * 10 + buf[p]! - 48; p++; digits++ }
          this.#status = digits === 3 ? code : -1
        }
      }
      pos = nl + 1
    }
    return -1
  }

  #onEnd (content: Buffer): void {
    const run = this.#run
    const now = performance.now()
    if (content.length !== 8 || content[4] !== ProtocolStatus.REQUEST_COMPLETE) {
      this.#fail('protocol', content.length !== 8
        ? `END_REQUEST body of ${content.length} bytes`
        : `END_REQUEST with protocolStatus ${content[4]!}`)
      return
    }
    run.completed++
    if (run.phase <= PHASE_MEASURE) {
      const us = Math.round((now - this.#startedAt) * 1000)
      run.hist.record(us < 1 ? 1 : us)
      run.requests++
      this.served = true
      if (this.#failed || !this.#headDone || this.#status < 0) {
        run.error('protocol', this.#failed ? 'CGI header block larger than 64 KiB' : !this.#headDone ? 'no CGI header block in STDOUT' : 'malformed Status header')
      } else {
        const status = this.#status === 0 ? 200 : this.#status
        if (status !== run.expectStatus) {
          run.error('status', `status ${status}, expected ${run.expectStatus}`)
        } else if (run.expectBody !== null && (!this.#bodyOk || this.#bodyOffset !== run.expectBody.length)) {
          run.error('body', `body differs from the expected ${run.expectBody.length} bytes (got ${this.#bodyOffset} bytes)`)
        }
      }
    }
    this.#finish()
    // Without keep-conn, close now: php-fpm waits for the client's end of the socket before it takes
    // the next connection (fcgi_close: shutdown, then read until EOF). After the measure, close too:
    // a server that ties a kept connection to a worker (php-fpm) can then serve the connections it
    // left waiting, so that the drain ends quickly.
    if (!run.keepConn || run.phase >= PHASE_DRAIN) this.#close()
    run.connIdle(this)
  }
}

function patternBody (n: number): Buffer {
  const line = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n', 'latin1')
  const buf = Buffer.allocUnsafe(n)
  for (let off = 0; off < n; off += line.length) line.copy(buf, off, 0, Math.min(line.length, n - off))
  return buf
}

interface Prepared {
  params: Record<string, string>
  body: Buffer | null
  method: string
  uri: string
  script: string
  expectBody: Buffer | null
}

function prepare (opts: LoadOptions): Prepared {
  const uri = opts.uri ?? '/'
  const body = opts.body != null
    ? Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.byteLength)
    : opts.dataSize !== undefined && opts.dataSize > 0 ? patternBody(opts.dataSize) : null
  const method = (opts.method ?? (body !== null ? 'POST' : 'GET')).toUpperCase()
  const headers = [...(opts.headers ?? [])]
  if (body !== null && !headers.some(([n]) => n.toLowerCase() === 'content-type')) headers.push(['Content-Type', 'application/octet-stream'])
  const params = buildCgiParams({
    uri,
    method,
    scriptFilename: opts.script,
    documentRoot: opts.root,
    headers,
    bodyLength: body === null ? undefined : body.length,
    extra: opts.params
  })
  const expectBody = opts.expectEcho === true
    ? (body ?? Buffer.alloc(0))
    : opts.expectBody == null ? null : typeof opts.expectBody === 'string' ? Buffer.from(opts.expectBody, 'utf8') : Buffer.from(opts.expectBody)
  return { params, body, method, uri, script: params.SCRIPT_FILENAME ?? '', expectBody }
}

/** The bytes of one whole request, id 1: BEGIN_REQUEST, PARAMS..., empty PARAMS, STDIN..., empty STDIN. */
export function buildRequestBytes (params: Record<string, string>, body: Uint8Array | null, keepConn: boolean): Buffer {
  const id = 1
  const encoded = encodeParams(Object.entries(params))
  return Buffer.concat([
    buildBeginRequest(id, Role.RESPONDER, keepConn ? FCGI_KEEP_CONN : 0),
    ...frameChunks(RecordType.PARAMS, id, encoded),
    buildStreamEnd(RecordType.PARAMS, id),
    ...(body === null ? [] : frameChunks(RecordType.STDIN, id, body)),
    buildStreamEnd(RecordType.STDIN, id)
  ])
}

/** Waits ms, or less when the signal aborts. */
function pause (ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true || ms <= 0) return Promise.resolve()
  return new Promise(resolve => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

function round3 (x: number): number {
  return Math.round(x * 1000) / 1000
}

function checkNumber (name: string, v: number, ok: boolean): void {
  if (!ok) throw new RangeError(`${name}: invalid value ${v}`)
}

/**
 * Runs the load and resolves with the figures. Throws when the pre-check request fails (unless
 * check is false): a benchmark of wrong answers measures nothing.
 */
export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  const connections = opts.connections ?? 16
  const durationS = opts.duration ?? 10
  const warmupS = opts.warmup ?? 1
  const keepConn = opts.keepConn ?? true
  const timeoutMs = opts.timeoutMs ?? 10_000
  const expectStatus = opts.expectStatus ?? 200
  const rate = opts.rate ?? 0
  const maxOutstanding = opts.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING
  checkNumber('connections (a positive integer)', connections, Number.isInteger(connections) && connections >= 1)
  checkNumber('duration (seconds > 0)', durationS, durationS > 0)
  checkNumber('warmup (seconds >= 0)', warmupS, warmupS >= 0)
  checkNumber('rate (requests per second >= 0)', rate, rate >= 0 && Number.isFinite(rate))
  checkNumber('maxOutstanding (a positive integer)', maxOutstanding, Number.isInteger(maxOutstanding) && maxOutstanding >= 1)
  checkNumber('timeoutMs (> 0)', timeoutMs, timeoutMs > 0)
  const target = parseClientAddress(opts.address)
  const p = prepare(opts)
  const signal = opts.signal

  if (opts.check ?? true) {
    let res
    try {
      res = await fcgiRequest(target, { params: p.params, body: p.body }, { timeoutMs })
    } catch (err) {
      throw new Error(`check request failed: ${(err as Error).message}`, { cause: err })
    }
    const why = res.status !== expectStatus
      ? `status ${res.status}, expected ${expectStatus}`
      : p.expectBody !== null && !res.body.equals(p.expectBody)
        ? `body of ${res.body.length} bytes differs from the expected ${p.expectBody.length} bytes`
        : null
    if (why !== null) {
      const excerpt = res.body.subarray(0, 200).toString('utf8')
      throw new Error(`check request failed: ${why}; SCRIPT_FILENAME=${p.script}; body: ${JSON.stringify(excerpt)}` +
        (res.stderr !== '' ? `; stderr: ${JSON.stringify(res.stderr.slice(0, 300))}` : ''))
    }
  }

  const run = new Run(target, buildRequestBytes(p.params, p.body, keepConn), keepConn, expectStatus, p.expectBody, timeoutMs, rate, maxOutstanding)
  const conns: LoadConn[] = []
  for (let i = 0; i < connections; i++) conns.push(new LoadConn(run))
  const watchdog = setInterval(() => {
    const limit = performance.now() - timeoutMs
    for (const c of conns) if (c.inFlight && c.startedAt < limit) c.timeout()
    if (run.queued > 0) run.expireQueued(limit)
  }, Math.max(10, Math.min(250, timeoutMs / 4)))

  // Open loop: request k is due at tStart + k / rate. The pacer (pacer.ts), and every response that
  // ends, send the requests already due, with their due time as their start: a late send is counted
  // as latency, as a late server would be, and its lateness is reported on its own.
  let tStart = 0
  let seq = 0
  const interval = rate > 0 ? 1000 / rate : 0
  const catchUp = (): void => {
    if (run.phase >= PHASE_DRAIN) return
    const now = performance.now()
    for (let due = tStart + seq * interval; due <= now; due = tStart + seq * interval) {
      seq++
      run.schedule(due, now)
    }
  }
  const pacer = new Pacer(() => tStart + seq * interval, catchUp, () => run.inFlight > 0)

  let phaseStart = performance.now()
  let progressTimer: NodeJS.Timeout | null = null
  if (opts.onProgress !== undefined) {
    const onProgress = opts.onProgress
    const every = opts.progressIntervalMs ?? 1000
    let lastT = phaseStart
    let lastCompleted = 0
    progressTimer = setInterval(() => {
      const now = performance.now()
      const phase = run.phase === PHASE_WARMUP ? 'warmup' : run.phase === PHASE_MEASURE ? 'measure' : 'drain'
      const e = run.errors
      onProgress({
        phase,
        elapsed: (now - phaseStart) / 1000,
        phaseDuration: phase === 'warmup' ? warmupS : phase === 'measure' ? durationS : 0,
        requests: run.requests,
        recentRps: now > lastT ? (run.completed - lastCompleted) / ((now - lastT) / 1000) : 0,
        p99: run.hist.count === 0 ? 0 : round3(run.hist.percentile(99) / 1000),
        errors: e.connect + e.protocol + e.status + e.body + e.timeout + e.dropped,
        inFlight: run.inFlight,
        queued: run.queued
      })
      lastT = now
      lastCompleted = run.completed
    }, every)
    progressTimer.unref()
  }

  let t0 = 0
  let t1 = 0
  let cpu0 = process.cpuUsage()
  let cpu1 = cpu0
  try {
    // Closed loop: every connection starts its first request. Open loop: they wait for the schedule.
    run.phase = PHASE_WARMUP
    for (const c of conns) run.connIdle(c)
    if (rate > 0) {
      tStart = performance.now()
      run.catchUp = catchUp
      pacer.start()
    }
    if (warmupS > 0) await pause(warmupS * 1000, signal)
    opts.onMeasure?.('start')
    run.beginMeasure(conns)
    t0 = phaseStart = performance.now()
    cpu0 = process.cpuUsage()
    await pause(durationS * 1000, signal)
    run.phase = PHASE_DRAIN
    t1 = phaseStart = performance.now()
    opts.onMeasure?.('end')
    cpu1 = process.cpuUsage(cpu0)
    pacer.stop()
    run.stopSchedule()
    // Let the requests in flight finish (uncounted), so the server sees no aborted request.
    if (run.inFlight > 0) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.min(timeoutMs, DRAIN_MAX_MS))
        run.onIdle = () => { clearTimeout(timer); resolve() }
      })
    }
  } finally {
    run.phase = PHASE_DONE
    clearInterval(watchdog)
    if (progressTimer !== null) clearInterval(progressTimer)
    pacer.stop()
    for (const c of conns) c.stop()
  }

  const h = run.hist
  const ms = (us: number): number => round3(us / 1000)
  const n = h.count
  const e = run.errors
  const duration = (t1 - t0) / 1000
  const percentiles: [number, number][] = []
  if (n > 0) for (const [pct, us] of h.percentiles) percentiles.push([pct, ms(us)])
  return {
    address: run.addressName,
    uri: p.uri,
    script: p.script,
    method: p.method,
    mode: rate > 0 ? 'open' : 'closed',
    rate: rate > 0 ? rate : null,
    maxOutstanding: rate > 0 ? maxOutstanding : null,
    connections,
    keepConn,
    requestBodyBytes: p.body?.length ?? 0,
    duration: round3(duration),
    warmup: warmupS,
    stoppedEarly: signal?.aborted === true,
    requests: run.requests,
    rps: duration > 0 ? Math.round((run.requests / duration) * 10) / 10 : 0,
    connectionsUsed: conns.filter(c => c.used).length,
    connectionsServed: conns.filter(c => c.served).length,
    latency: {
      min: n === 0 ? 0 : ms(h.min),
      mean: n === 0 ? 0 : ms(h.mean),
      stddev: n === 0 ? 0 : ms(h.stddev),
      p50: n === 0 ? 0 : ms(h.percentile(50)),
      p90: n === 0 ? 0 : ms(h.percentile(90)),
      p99: n === 0 ? 0 : ms(h.percentile(99)),
      p999: n === 0 ? 0 : ms(h.percentile(99.9)),
      max: n === 0 ? 0 : ms(h.max),
      percentiles
    },
    lateness: rate > 0 && run.lateness.count > 0
      ? { p50: ms(run.lateness.percentile(50)), p99: ms(run.lateness.percentile(99)), max: ms(run.lateness.max) }
      : null,
    errors: { ...e, total: e.connect + e.protocol + e.status + e.body + e.timeout + e.dropped },
    errorSamples: { ...run.samples },
    bytesSent: run.bytesSent,
    bytesReceived: run.bytesReceived,
    stdoutBytes: run.stdoutBytes,
    clientCpu: duration > 0 ? Math.round(((cpu1.user + cpu1.system) / 1e6 / duration) * 100) / 100 : 0
  }
}

export function formatBytes (n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`
  return `${Math.round(n)} B`
}

/** The human-readable report. */
export function formatLoadResult (r: LoadResult): string {
  const l = r.latency
  const e = r.errors
  const loop = r.mode === 'open'
    ? `open loop at ${r.rate} req/s (latency from the scheduled time, at most ${r.maxOutstanding} outstanding)`
    : 'closed loop'
  const lines = [
    `${r.method} ${r.uri} -> ${r.address} (SCRIPT_FILENAME ${r.script})` +
      (r.requestBodyBytes > 0 ? `, ${r.requestBodyBytes} bytes of body` : ''),
    `${r.connections} connections, ${r.keepConn ? 'keep-conn' : 'new connection per request'}, ${loop}, ` +
      `${r.duration} s measured after ${r.warmup} s of warm-up${r.stoppedEarly ? ' (stopped early)' : ''}`,
    '',
    `  requests   ${r.requests}`,
    `  req/s      ${r.rps.toFixed(1)}`,
    `  latency    p50 ${l.p50} ms   p90 ${l.p90} ms   p99 ${l.p99} ms   p99.9 ${l.p999} ms   max ${l.max} ms` +
      `   (mean ${l.mean} ms, stddev ${l.stddev} ms)`,
    ...(r.lateness === null
      ? []
      : [`  lateness   p50 ${r.lateness.p50} ms   p99 ${r.lateness.p99} ms   max ${r.lateness.max} ms` +
        '   (of this generator, after the due time: part of the latency above)']),
    `  errors     ${e.total}   (connect ${e.connect}, protocol ${e.protocol}, status ${e.status}, body ${e.body}, timeout ${e.timeout}` +
      (r.mode === 'open' ? `, dropped ${e.dropped})` : ')'),
    `  received   ${formatBytes(r.bytesReceived)} (${formatBytes(r.stdoutBytes)} of STDOUT), ` +
      `${formatBytes(r.duration > 0 ? r.bytesReceived / r.duration : 0)}/s`,
    `  sent       ${formatBytes(r.bytesSent)}, ${formatBytes(r.duration > 0 ? r.bytesSent / r.duration : 0)}/s`,
    `  client CPU ${(r.clientCpu * 100).toFixed(0)}% of one core (this generator's own use during the measure)`
  ]
  if (r.connectionsServed < r.connectionsUsed) {
    lines.push(`  WARNING    only ${r.connectionsServed} of the ${r.connectionsUsed} connections used got a response during the measure` +
      (r.keepConn ? ' (a server that ties a kept connection to one worker, as php-fpm does, serves only as many connections as it has workers)' : ''))
  }
  for (const [kind, msg] of Object.entries(r.errorSamples)) lines.push(`  first ${kind} error: ${msg}`)
  return lines.join('\n')
}
