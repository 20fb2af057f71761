// `node-fpm bench`: a FastCGI load generator (what wrk or ab are to HTTP servers), against any
// FastCGI responder: node-fpm, php-fpm, anything behind a fastcgi_pass. A thin layer over
// src/bench/load-generator.ts: it parses the options, draws the live progress line, prints the
// report. It never calls process.exit, it sets process.exitCode.
//
// `-d` is the duration (as in wrk and the synopsis); the request body is --data (no short
// letter), unlike `node-fpm request` where -d is curl's --data.

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { InvalidArgumentError, Option } from 'commander'
import type { Command } from 'commander'
import type { LoadProgress, LoadResult } from '../bench/load-generator.ts'

/** Exit statuses of `node-fpm bench` (usage errors, 64, are the main program's business). */
export const BENCH_EXIT_OK = 0
export const BENCH_EXIT_ERRORS = 1
export const BENCH_EXIT_FAILURE = 2

interface BenchCliOptions {
  script?: string
  root?: string
  connections: number
  duration: number
  warmup: number
  method?: string
  header?: string[]
  param?: string[]
  data?: string
  dataSize?: number
  keepConn: boolean
  rate?: number
  maxOutstanding: number
  expectStatus: number
  expectBody?: string
  expectEcho?: boolean
  timeout: number
  check: boolean
  progress: boolean
  json?: boolean
}

const HELP_AFTER = `
Closed loop (default): each of the -c connections sends its next request as soon as the previous
one's END_REQUEST arrives, so the server's speed sets the rate. Open loop (--rate R): R requests
per second in all are started on a fixed schedule whatever the responses do; each goes to a free
connection or waits for one, and its latency counts from its scheduled time (no coordinated
omission). At most --max-outstanding requests wait or run; a scheduled request beyond that is not
sent and counts as a 'dropped' error. The report's 'lateness' is how long after their due time
the generator itself sent them (part of the latency): large against the latency, the figures
measure the generator.

Every response is checked: END_REQUEST with REQUEST_COMPLETE, a valid CGI header block, the status
(--expect-status, from the CGI Status header, 200 without one) and, with --expect-body or
--expect-echo, the body byte for byte. One request is sent and checked before the run (unless
--no-check): when it fails, nothing is measured. Latencies go into an HdrHistogram (perf_hooks,
µs, 3 significant digits); the report gives req/s, p50/p90/p99/p99.9/max, the errors by kind and
the bytes. Only what completes or fails during the measure (after the warm-up) counts.

Times: 10 (seconds), 10s, 500ms, 2m. Sizes: 1048576, 64K, 1M (K = 1024).
The params are those nginx's fastcgi_params sends (see node-fpm request --help). A body
(--data or --data-size) makes the method POST unless -X says otherwise, and CONTENT_TYPE
application/octet-stream unless -H sets a Content-Type.

Exit status:
  0   no request failed
  1   some requests failed (any error kind)
  2   the run could not start: the check request failed, an unreadable @file
  64  bad command line

Examples:
  node-fpm bench /run/node-fpm/www.sock /hello.mjs --root /srv/www -c 16 -d 10
  node-fpm bench 127.0.0.1:9000 /api --script app.mjs --no-keep-conn --expect-body @expected.json
  node-fpm bench /run/php/php8.2-fpm.sock /index.php --root /var/www/html --rate 500 -d 30 --json
  node-fpm bench 9000 /upload --script app.mjs --data @photo.jpg -H 'Content-Type: image/jpeg'
`

// No default ([]) given to commander: it would print "(default: [])" in the help.
function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

function integer (name: string, min: number) {
  return (v: string): number => {
    const n = Number(v)
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
    return n
  }
}

function positive (name: string) {
  return (v: string): number => {
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`)
    return n
  }
}

const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 }

/** '10', '10s', '500ms', '2m', '1.5h' -> seconds. */
export function parseSeconds (v: string, allowZero: boolean): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/.exec(v.trim())
  const n = m === null ? NaN : Number(m[1]) * TIME_UNITS[m[2] ?? 's']!
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new InvalidArgumentError(`expected a time ${allowZero ? '>= 0' : '> 0'}: seconds, or a number with ms, s, m or h`)
  }
  return n
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** '1048576', '64K', '1M', '1MiB' -> bytes. */
export function parseSize (v: string): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(v.trim())
  const n = m === null ? NaN : Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a size in bytes, or with K, M or G (1024-based)')
  return n
}

function parseHeader (h: string): [string, string] {
  const i = h.indexOf(':')
  const name = i > 0 ? h.slice(0, i).trim() : ''
  if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`--header '${h}' is not 'Name: value'`)
  return [name, h.slice(i + 1).trim()]
}

function parseParam (kv: string): [string, string] {
  const i = kv.indexOf('=')
  if (i <= 0) throw new Error(`--param '${kv}' is not NAME=VALUE`)
  return [kv.slice(0, i), kv.slice(i + 1)]
}

async function readStdin (): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A string as UTF-8, '@file' as the file's bytes, '@-' as stdin. */
async function loadBytes (option: string, v: string): Promise<Buffer> {
  if (v === '@-') return await readStdin()
  if (!v.startsWith('@')) return Buffer.from(v, 'utf8')
  try {
    return await readFile(v.slice(1))
  } catch (err) {
    throw new Error(`${option} ${v}: ${(err as Error).message}`, { cause: err })
  }
}

/** Adds `bench <address> [uri]` to the program. */
export function registerBenchCommand (program: Command): void {
  program
    .command('bench')
    .description('FastCGI load generator: measure a server (node-fpm, php-fpm, any) under load, closed or open loop')
    .argument('<address>', 'FastCGI address: /path/to.sock, unix:path, host:port, [ipv6]:port or port')
    .argument('[uri]', 'request URI: path and optional query', '/')
    .option('--script <file>', 'SCRIPT_FILENAME (made absolute); default: the URI path under --root, else the URI path')
    .option('--root <dir>', 'DOCUMENT_ROOT (made absolute); default: the folder of --script')
    .option('-c, --connections <n>', 'concurrent connections (each has one request in flight at a time)', integer('--connections', 1), 16)
    .addOption(new Option('-d, --duration <time>', 'how long to measure').argParser((v: string) => parseSeconds(v, false)).default(10, '10s'))
    .addOption(new Option('--warmup <time>', 'load first for this long, uncounted').argParser((v: string) => parseSeconds(v, true)).default(1, '1s'))
    .option('-X, --method <method>', 'request method (default: GET, POST with a body)')
    .option('-H, --header <header>', "HTTP request header 'Name: value', sent as HTTP_NAME (repeatable)", collect)
    .option('--param <name=value>', 'set a FastCGI param, overriding the computed ones (repeatable)', collect)
    .option('--data <data>', 'request body of every request: the string, @file, or @- for stdin')
    .option('--data-size <size>', 'request body of this many bytes (a repeating text pattern)', parseSize)
    .option('--no-keep-conn', 'a new connection per request, without FCGI_KEEP_CONN (nginx\'s default)')
    .option('--rate <r>', 'open loop: start r requests per second in all, whatever the responses do', positive('--rate'))
    .option('--max-outstanding <n>', 'open loop: most requests waiting or in flight; beyond, they are dropped (counted as errors)', integer('--max-outstanding', 1), 1000)
    .option('--expect-status <code>', 'status every response must have', integer('--expect-status', 100), 200)
    .option('--expect-body <body>', 'body every response must have: the string, or @file')
    .option('--expect-echo', 'every response body must equal the request body')
    .option('--timeout <ms>', 'time limit of one request (from its start, or its scheduled time with --rate)', integer('--timeout', 1), 10000)
    .option('--no-check', 'do not send and check one request before the run')
    .option('--no-progress', 'no live progress line (there is one on stderr when it is a terminal)')
    .option('--json', 'print the result as JSON (the LoadResult of src/bench/load-generator.ts)')
    .addHelpText('after', HELP_AFTER)
    .action(async (address: string, uri: string, opts: BenchCliOptions) => {
      process.exitCode = await runBench(address, uri, opts)
    })
}

async function runBench (address: string, uri: string, opts: BenchCliOptions): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`node-fpm bench: ${message.replace(/\s*\n\s*/g, ' ')}\n`)
    return BENCH_EXIT_FAILURE
  }
  let headers: [string, string][]
  let params: Record<string, string>
  let body: Buffer | null = null
  let expectBody: Buffer | undefined
  try {
    if (opts.data !== undefined && opts.dataSize !== undefined) throw new Error('--data and --data-size cannot be used together')
    if (opts.expectEcho === true && opts.expectBody !== undefined) throw new Error('--expect-body and --expect-echo cannot be used together')
    if (opts.data === '@-' && opts.expectBody === '@-') throw new Error('--data and --expect-body cannot both read stdin')
    headers = (opts.header ?? []).map(parseHeader)
    params = Object.fromEntries((opts.param ?? []).map(parseParam))
    if (opts.data !== undefined) body = await loadBytes('--data', opts.data)
    if (opts.expectBody !== undefined) expectBody = await loadBytes('--expect-body', opts.expectBody)
  } catch (err) {
    return fail((err as Error).message)
  }
  const script = opts.script === undefined ? undefined : path.resolve(opts.script)
  const root = opts.root !== undefined ? path.resolve(opts.root) : script !== undefined ? path.dirname(script) : undefined

  // Loaded here: every node-fpm command (the supervisor's start too) loads this module for its options.
  const [{ tierUpEarly }, { formatLoadResult, runLoad }] = await Promise.all([import('../bench/early-tier-up.ts'), import('../bench/load-generator.ts')])
  tierUpEarly()
  const progress = opts.progress && process.stderr.isTTY === true ? new ProgressLine() : null
  const abort = new AbortController()
  // The first Ctrl-C ends the run early and prints what was measured; a second one kills.
  const onSigint = (): void => { abort.abort() }
  process.once('SIGINT', onSigint)
  let result: LoadResult
  try {
    result = await runLoad({
      address,
      uri: uri === '' ? '/' : uri,
      script,
      root,
      method: opts.method,
      headers,
      params,
      body,
      dataSize: opts.dataSize,
      connections: opts.connections,
      duration: opts.duration,
      warmup: opts.warmup,
      keepConn: opts.keepConn,
      rate: opts.rate,
      maxOutstanding: opts.maxOutstanding,
      expectStatus: opts.expectStatus,
      expectBody,
      expectEcho: opts.expectEcho,
      timeoutMs: opts.timeout,
      check: opts.check,
      signal: abort.signal,
      progressIntervalMs: 500,
      onProgress: progress === null ? undefined : (p) => { progress.update(p) }
    })
  } catch (err) {
    return fail((err as Error).message)
  } finally {
    process.off('SIGINT', onSigint)
    progress?.clear()
  }
  process.stdout.write(opts.json === true ? JSON.stringify(result, null, 2) + '\n' : formatLoadResult(result) + '\n')
  return result.errors.total > 0 ? BENCH_EXIT_ERRORS : BENCH_EXIT_OK
}

/** One line on stderr, redrawn in place. */
class ProgressLine {
  #shown = false

  update (p: LoadProgress): void {
    const phase = p.phase === 'warmup' ? 'warm-up' : p.phase
    const when = p.phaseDuration > 0 ? `${p.elapsed.toFixed(1)}/${p.phaseDuration} s` : `${p.elapsed.toFixed(1)} s`
    const parts = [`${phase.padEnd(7)} ${when.padStart(10)}`, `${Math.round(p.recentRps).toLocaleString('en-US').padStart(8)} req/s`]
    if (p.phase !== 'warmup') parts.push(`${p.requests} req`, `p99 ${p.p99} ms`, `errors ${p.errors}`)
    parts.push(`in flight ${p.inFlight}`)
    if (p.queued > 0) parts.push(`queued ${p.queued}`)
    let line = parts.join('   ')
    const width = process.stderr.columns
    if (width !== undefined && width > 10 && line.length >= width) line = line.slice(0, width - 1)
    process.stderr.write(`\r\x1b[2K${line}`)
    this.#shown = true
  }

  clear (): void {
    if (this.#shown) process.stderr.write('\r\x1b[2K')
    this.#shown = false
  }
}
