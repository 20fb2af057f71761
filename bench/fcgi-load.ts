// FastCGI load generator: a closed loop of N connections, each sending its next request as soon as
// the previous response's END_REQUEST arrives, for a fixed duration after a warm-up. Every response
// is checked (protocol status, CGI Status, optionally the body); latencies go into a perf_hooks
// histogram (µs). Library (runLoad) and CLI:
//
//   node bench/fcgi-load.ts ADDRESS [URI] --script FILE -c 16 -d 10 [--warmup 1] [--no-keep-conn]
//        [-X POST --data-size N] [--expect-status 200] [--expect-body STR] [--json]
//
// It shares the machine's cores with the server under test, so the loop is lean: the request
// bytes (BEGIN_REQUEST + PARAMS + empty PARAMS + STDIN... + empty STDIN) are built once and the
// same Buffer is written for every request of every connection (same request id 1: one request at
// a time per connection); responses go through the codec's RecordParser and are checked in place,
// without building strings; one interval timer watches all timeouts.
//
// Not a general client (src/client/fcgi-client.ts is), and not a scenario runner (bench/run.ts).

import net from 'node:net'
import path from 'node:path'
import type { Socket } from 'node:net'
import { createHistogram } from 'node:perf_hooks'
import type { RecordableHistogram } from 'node:perf_hooks'
import { buildCgiParams, fcgiRequest } from '../src/client/fcgi-client.ts'
import { formatClientAddress, parseClientAddress } from '../src/client/address.ts'
import type { ClientAddress } from '../src/client/address.ts'
import { FCGI_KEEP_CONN, ProtocolStatus, RecordType, Role } from '../src/fastcgi/constants.ts'
import { encodeParams } from '../src/fastcgi/params.ts'
import { RecordParser } from '../src/fastcgi/record-parser.ts'
import { buildStreamEnd, frameChunks } from '../src/fastcgi/record-writer.ts'
import { buildBeginRequest } from '../src/fastcgi/records.ts'

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
  /** Concurrent connections (each with one request in flight), default 16. */
  connections?: number
  /** Measured duration in seconds, default 10. */
  duration?: number
  /** Warm-up before the measure, in seconds, default 1. Responses in the warm-up are not counted. */
  warmup?: number
  /** FCGI_KEEP_CONN (default true). false: a new connection per request, as nginx does by default. */
  keepConn?: boolean
  /** Expected status (CGI Status header; 200 without one), default 200. */
  expectStatus?: number
  /** Expected body, exactly. */
  expectBody?: string | Uint8Array | null
  /** The body must equal the request body (for an echo script). */
  expectEcho?: boolean
  /** Per-request time limit in ms (until END_REQUEST), default 10000. */
  timeoutMs?: number
  /** Send one request first and check it, failing with a detailed error (default true). */
  check?: boolean
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
  /** No END_REQUEST within timeoutMs. */
  timeout: number
}

export interface LoadResult {
  address: string
  uri: string
  script: string
  method: string
  connections: number
  keepConn: boolean
  requestBodyBytes: number
  /** Seconds actually measured (from the end of the warm-up to the stop). */
  duration: number
  warmup: number
  /** Responses completed during the measure (errors of kind status and body included). */
  requests: number
  /** requests / duration. */
  rps: number
  /**
   * Connections that got at least one response during the measure. Fewer than `connections` means
   * the server left some connections waiting the whole time: php-fpm, for one, gives a kept
   * connection to one worker until the client closes it, so with keep-conn it serves only as many
   * connections as it has workers (the others time out).
   */
  connectionsServed: number
  /** Latency of the completed requests, in ms (connect time included without keep-conn). */
  latency: { min: number, mean: number, stddev: number, p50: number, p90: number, p99: number, p999: number, max: number }
  errors: ErrorCounts & { total: number }
  /** The first message seen for each kind of error. */
  errorSamples: Partial<Record<keyof ErrorCounts, string>>
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

const PHASE_WARMUP = 0
const PHASE_MEASURE = 1
const PHASE_DRAIN = 2
const PHASE_DONE = 3

const CONNECT_BACKOFF_MS = 20
const DRAIN_MAX_MS = 5000

/** State shared by all connections of one run. */
class Run {
  phase = PHASE_WARMUP
  readonly hist: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000, figures: 3 })
  requests = 0
  bytesReceived = 0
  stdoutBytes = 0
  readonly errors: ErrorCounts = { connect: 0, protocol: 0, status: 0, body: 0, timeout: 0 }
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

  constructor (target: ClientAddress, request: Buffer, keepConn: boolean, expectStatus: number, expectBody: Buffer | null, timeoutMs: number) {
    this.target = target
    this.addressName = formatClientAddress(target)
    this.request = request
    this.keepConn = keepConn
    this.expectStatus = expectStatus
    this.expectBody = expectBody
    this.timeoutMs = timeoutMs
  }

  error (kind: ErrorKind, message: string): void {
    if (this.phase !== PHASE_MEASURE) return
    this.errors[kind]++
    this.samples[kind] ??= message
  }
}

// Lower-case "status:" for the in-place header scan.
const STATUS_NAME = [0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x3a]

/** One connection of the closed loop. */
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
  #reconnectTimer: NodeJS.Timeout | null = null
  /** Got a response during the measure. */
  served = false

  constructor (run: Run) {
    this.#run = run
    this.#parser = new RecordParser({ onRecord: (type, _id, content) => { this.#onRecord(type, content) } })
  }

  get inFlight (): boolean { return this.#inFlight }
  get startedAt (): number { return this.#startedAt }

  start (): void {
    if (this.#run.phase >= PHASE_DRAIN) return
    this.#startedAt = performance.now()
    this.#inFlight = true
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
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.#socket) return
      if (this.#run.phase === PHASE_MEASURE) this.#run.bytesReceived += chunk.length
      try {
        this.#parser.push(chunk)
      } catch (err) {
        this.#fail('protocol', `protocol error: ${(err as Error).message}`)
      }
    })
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
    this.#socket!.write(this.#run.request)
  }

  /** Ends the request in flight with an error, drops the connection, and starts the next request. */
  #fail (kind: ErrorKind, message: string): void {
    if (!this.#inFlight) return
    this.#run.error(kind, message)
    this.#finish()
    const socket = this.#socket
    this.#socket = null
    socket?.destroy()
    if (kind === 'connect') {
      // Do not spin on a server that is down.
      this.#reconnectTimer = setTimeout(() => { this.#reconnectTimer = null; this.start() }, CONNECT_BACKOFF_MS)
    } else {
      this.start()
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

  stop (): void {
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    const socket = this.#socket
    this.#socket = null
    socket?.destroy()
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
    if (run.phase === PHASE_MEASURE) run.stdoutBytes += content.length
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
    if (run.phase === PHASE_MEASURE) {
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
    if (!run.keepConn) {
      // Close now: php-fpm waits for the client's end of the socket before it takes the next
      // connection (fcgi_close: shutdown, then read until EOF).
      const socket = this.#socket
      this.#socket = null
      socket?.destroy()
    }
    this.start()
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

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => { setTimeout(resolve, ms) })
}

function round3 (x: number): number {
  return Math.round(x * 1000) / 1000
}

/**
 * Runs the closed loop and resolves with the figures. Throws when the pre-check request fails
 * (unless check is false): a benchmark of wrong answers measures nothing.
 */
export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  const connections = opts.connections ?? 16
  const durationS = opts.duration ?? 10
  const warmupS = opts.warmup ?? 1
  const keepConn = opts.keepConn ?? true
  const timeoutMs = opts.timeoutMs ?? 10_000
  const expectStatus = opts.expectStatus ?? 200
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`connections must be a positive integer, got ${connections}`)
  if (!(durationS > 0)) throw new RangeError(`duration must be > 0 s, got ${durationS}`)
  if (!(warmupS >= 0)) throw new RangeError(`warmup must be >= 0 s, got ${warmupS}`)
  const target = parseClientAddress(opts.address)
  const p = prepare(opts)

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

  const run = new Run(target, buildRequestBytes(p.params, p.body, keepConn), keepConn, expectStatus, p.expectBody, timeoutMs)
  const conns: LoadConn[] = []
  for (let i = 0; i < connections; i++) conns.push(new LoadConn(run))
  const watchdog = setInterval(() => {
    const limit = performance.now() - timeoutMs
    for (const c of conns) if (c.inFlight && c.startedAt < limit) c.timeout()
  }, Math.max(10, Math.min(250, timeoutMs / 4)))

  let t0 = 0
  let t1 = 0
  let cpu0 = process.cpuUsage()
  let cpu1 = cpu0
  try {
    for (const c of conns) c.start()
    if (warmupS > 0) await sleep(warmupS * 1000)
    run.phase = PHASE_MEASURE
    t0 = performance.now()
    cpu0 = process.cpuUsage()
    await sleep(durationS * 1000)
    run.phase = PHASE_DRAIN
    t1 = performance.now()
    cpu1 = process.cpuUsage(cpu0)
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
    for (const c of conns) c.stop()
  }

  const h = run.hist
  const ms = (us: number): number => round3(us / 1000)
  const n = h.count
  const e = run.errors
  const duration = (t1 - t0) / 1000
  return {
    address: run.addressName,
    uri: p.uri,
    script: p.script,
    method: p.method,
    connections,
    keepConn,
    requestBodyBytes: p.body?.length ?? 0,
    duration: round3(duration),
    warmup: warmupS,
    requests: run.requests,
    rps: Math.round((run.requests / duration) * 10) / 10,
    connectionsServed: conns.filter(c => c.served).length,
    latency: {
      min: n === 0 ? 0 : ms(h.min),
      mean: n === 0 ? 0 : ms(h.mean),
      stddev: n === 0 ? 0 : ms(h.stddev),
      p50: n === 0 ? 0 : ms(h.percentile(50)),
      p90: n === 0 ? 0 : ms(h.percentile(90)),
      p99: n === 0 ? 0 : ms(h.percentile(99)),
      p999: n === 0 ? 0 : ms(h.percentile(99.9)),
      max: n === 0 ? 0 : ms(h.max)
    },
    errors: { ...e, total: e.connect + e.protocol + e.status + e.body + e.timeout },
    errorSamples: { ...run.samples },
    bytesReceived: run.bytesReceived,
    stdoutBytes: run.stdoutBytes,
    clientCpu: Math.round(((cpu1.user + cpu1.system) / 1e6 / duration) * 100) / 100
  }
}

function formatBytes (n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`
  return `${n} B`
}

/** The human-readable report. */
export function formatLoadResult (r: LoadResult): string {
  const l = r.latency
  const e = r.errors
  const lines = [
    `${r.method} ${r.uri} -> ${r.address} (SCRIPT_FILENAME ${r.script})` +
      (r.requestBodyBytes > 0 ? `, ${r.requestBodyBytes} bytes of body` : ''),
    `${r.connections} connections, ${r.keepConn ? 'keep-conn' : 'new connection per request'}, ${r.duration} s measured after ${r.warmup} s of warm-up`,
    '',
    `  requests   ${r.requests}`,
    `  req/s      ${r.rps.toFixed(1)}`,
    `  latency    p50 ${l.p50} ms   p90 ${l.p90} ms   p99 ${l.p99} ms   p99.9 ${l.p999} ms   max ${l.max} ms` +
      `   (mean ${l.mean} ms, stddev ${l.stddev} ms)`,
    `  errors     ${e.total}   (connect ${e.connect}, protocol ${e.protocol}, status ${e.status}, body ${e.body}, timeout ${e.timeout})`,
    `  received   ${formatBytes(r.bytesReceived)} (${formatBytes(r.stdoutBytes)} of STDOUT), ${formatBytes(r.bytesReceived / r.duration)}/s`,
    `  client CPU ${(r.clientCpu * 100).toFixed(0)}% of one core (this generator's own use during the measure)`
  ]
  if (r.connectionsServed < r.connections) {
    lines.push(`  WARNING    only ${r.connectionsServed} of ${r.connections} connections got a response during the measure` +
      (r.keepConn ? ' (a server that ties a kept connection to one worker, as php-fpm does, serves only as many connections as it has workers)' : ''))
  }
  for (const [kind, msg] of Object.entries(r.errorSamples)) lines.push(`  first ${kind} error: ${msg}`)
  return lines.join('\n')
}

async function main (argv: string[]): Promise<void> {
  const { Command, CommanderError, InvalidArgumentError, Option } = await import('commander')
  const num = (name: string, min: number, integer: boolean) => (v: string): number => {
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}`)
    }
    return n
  }
  // No [] default given to commander: it would print "(default: [])" in the help.
  const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v]
  const program = new Command('fcgi-load')
    .description('FastCGI load generator: N connections in a closed loop, fixed duration, latency histogram, every response checked.')
    .argument('<address>', 'FastCGI server: /path/to.sock, unix:path, host:port, [v6]:port or port')
    .argument('[uri]', 'request URI (path and query)', '/')
    .option('--script <file>', 'SCRIPT_FILENAME, made absolute (default: --root + the URI path, else the URI path)')
    .option('--root <dir>', 'DOCUMENT_ROOT, made absolute')
    .option('-c, --connections <n>', 'concurrent connections, one request in flight each', num('--connections', 1, true), 16)
    .option('-d, --duration <s>', 'measured seconds', num('--duration', 0.001, false), 10)
    .option('--warmup <s>', 'seconds of warm-up before the measure (not counted)', num('--warmup', 0, false), 1)
    .option('--no-keep-conn', 'a new connection per request (FCGI_KEEP_CONN off), as nginx does by default')
    .option('-X, --method <method>', 'HTTP method (default GET, POST with --data-size)')
    .option('--data-size <n>', 'send a request body of n bytes', num('--data-size', 0, true))
    .option('-H, --header <header>', "HTTP header 'Name: value' (repeatable)", collect)
    .option('--param <name=value>', 'extra FastCGI param (repeatable)', collect)
    .option('--expect-status <n>', 'status every response must have', num('--expect-status', 100, true), 200)
    .option('--expect-body <string>', 'body every response must have, exactly')
    .option('--expect-echo', 'the response body must equal the request body')
    .option('--timeout <ms>', 'per-request time limit', num('--timeout', 1, true), 10000)
    .option('--no-check', 'skip the check request sent before the run')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText('after', '\nExit status: 0 no errors, 1 some requests failed, 2 the run could not start (bad option, failed check request).\nSee bench/README.md for what each figure means.')
    .showHelpAfterError()
    .exitOverride()
  try {
    program.parse(argv)
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    // commander printed the message (or the help) already
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 2
    return
  }
  const o = program.opts<{
    script?: string, root?: string, connections: number, duration: number, warmup: number, keepConn: boolean,
    method?: string, dataSize?: number, header?: string[], param?: string[], expectStatus: number,
    expectBody?: string, expectEcho?: boolean, timeout: number, check: boolean, json?: boolean
  }>()
  const [address, uri] = program.processedArgs as [string, string]
  const headers: [string, string][] = (o.header ?? []).map((h) => {
    const i = h.indexOf(':')
    if (i <= 0) program.error(`fcgi-load: --header '${h}' is not 'Name: value'`)
    return [h.slice(0, i).trim(), h.slice(i + 1).trim()]
  })
  const params: Record<string, string> = {}
  for (const kv of o.param ?? []) {
    const i = kv.indexOf('=')
    if (i <= 0) program.error(`fcgi-load: --param '${kv}' is not NAME=VALUE`)
    params[kv.slice(0, i)] = kv.slice(i + 1)
  }
  const result = await runLoad({
    address,
    uri,
    script: o.script === undefined ? undefined : path.resolve(o.script),
    root: o.root === undefined ? undefined : path.resolve(o.root),
    method: o.method,
    headers,
    params,
    dataSize: o.dataSize,
    connections: o.connections,
    duration: o.duration,
    warmup: o.warmup,
    keepConn: o.keepConn,
    expectStatus: o.expectStatus,
    expectBody: o.expectBody,
    expectEcho: o.expectEcho,
    timeoutMs: o.timeout,
    check: o.check
  })
  process.stdout.write(o.json === true ? JSON.stringify(result, null, 2) + '\n' : formatLoadResult(result) + '\n')
  if (result.errors.total > 0) process.exitCode = 1
}

if (import.meta.main) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`fcgi-load: ${(err as Error).message}\n`)
    process.exitCode = 2
  })
}
