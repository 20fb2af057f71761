// wrk (https://github.com/wg/wrk) as the HTTP load generator of bench/nginx.ts: one run, and the
// parser of its text report (`--latency` adds the percentile lines). wrk reports what it counted:
// it does not check bodies, so bench/nginx.ts checks one response per run itself.

import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { isExecutable } from './managed-process.ts'

export interface WrkResult {
  requests: number
  /** The run's own measured time, in seconds. */
  seconds: number
  rps: number
  /** Milliseconds. */
  latency: { avg: number, stdev: number, max: number, p50: number, p75: number, p90: number, p99: number }
  bytesRead: number
  /** Socket errors (wrk's connect, read, write, timeout) and non-2xx/3xx responses. */
  errors: { connect: number, read: number, write: number, timeout: number, status: number, total: number }
}

export interface WrkOptions {
  url: string
  threads: number
  connections: number
  /** Whole seconds (wrk does not take fractions). */
  durationS: number
  /** wrk's --timeout: a response later than this counts as a `timeout` error. */
  timeoutS: number
}

/** Path of wrk: $WRK_BIN, /usr/bin/wrk, wrk on PATH; null if none. */
export function findWrk (): string | null {
  const candidates: string[] = []
  if (process.env.WRK_BIN !== undefined && process.env.WRK_BIN !== '') candidates.push(process.env.WRK_BIN)
  candidates.push('/usr/bin/wrk', '/usr/local/bin/wrk')
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '') candidates.push(path.join(dir, 'wrk'))
  }
  return candidates.find(isExecutable) ?? null
}

/** `wrk -v`'s first line, e.g. 'wrk debian/4.1.0-3+b2 [epoll]'. */
export function wrkVersion (bin: string): string | null {
  let out: string
  try {
    out = execFileSync(bin, ['-v'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    // wrk -v prints its version, then the usage, and exits 1
    out = (err as { stdout?: string }).stdout ?? ''
  }
  const m = /^wrk .*?\[[a-z]+\]/m.exec(out)
  return m?.[0] ?? null
}

let running: ChildProcess | null = null

/** The wrk run in progress, if any (the bench kills it on Ctrl-C). */
export function runningWrk (): ChildProcess | null {
  return running
}

export function runWrk (bin: string, opts: WrkOptions): Promise<{ result: WrkResult, output: string }> {
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.durationS}s`,
    '--timeout', `${opts.timeoutS}s`, '--latency', opts.url]
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    running = child
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
    child.once('error', (e) => { running = null; reject(new Error(`wrk: ${e.message}`)) })
    child.once('close', (code, signal) => {
      running = null
      if (code !== 0) {
        reject(new Error(`wrk ${args.join(' ')} exited with ${code !== null ? `code ${code}` : `signal ${String(signal)}`}:\n${out}${err}`))
        return
      }
      try {
        resolve({ result: parseWrkOutput(out), output: out })
      } catch (e) {
        reject(new Error(`${(e as Error).message}\n--- wrk ${args.join(' ')} ---\n${out}${err}`))
      }
    })
  })
}

const TIME_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

function ms (value: string, unit: string): number {
  const f = TIME_MS[unit]
  if (f === undefined) throw new Error(`wrk output: unknown time unit '${unit}'`)
  return Number(value) * f
}

/** Parses wrk's report (run with --latency). Throws on a report without the expected lines. */
export function parseWrkOutput (text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)\s*$/m.exec(text)
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read\s*$/m.exec(text)
  const stats = /^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s/m.exec(text)
  if (rps === null || total === null) throw new Error('wrk output: no "Requests/sec:" or "N requests in" line')
  const pct = (p: number): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text)
    if (m === null) throw new Error(`wrk output: no ${p}% latency line (run wrk with --latency)`)
    return ms(m[1]!, m[2]!)
  }
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  const errors = {
    connect: Number(sock?.[1] ?? 0),
    read: Number(sock?.[2] ?? 0),
    write: Number(sock?.[3] ?? 0),
    timeout: Number(sock?.[4] ?? 0),
    status: Number(non2xx?.[1] ?? 0),
    total: 0
  }
  errors.total = errors.connect + errors.read + errors.write + errors.timeout + errors.status
  const requests = Number(total[1])
  // With no request completed wrk prints no latency figures that mean anything.
  const lat = requests === 0 || stats === null
    ? { avg: 0, stdev: 0, max: 0, p50: 0, p75: 0, p90: 0, p99: 0 }
    : {
        avg: ms(stats[1]!, stats[2]!),
        stdev: ms(stats[3]!, stats[4]!),
        max: ms(stats[5]!, stats[6]!),
        p50: pct(50),
        p75: pct(75),
        p90: pct(90),
        p99: pct(99)
      }
  return {
    requests,
    seconds: ms(total[2]!, total[3]!) / 1000,
    rps: Number(rps[1]),
    latency: lat,
    bytesRead: Math.round(Number(total[4]) * BYTES[total[5]!]!),
    errors
  }
}
