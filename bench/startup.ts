// `npm run bench:startup`: how fast node-fpm is ready, and what an idle thread costs in memory.
//
// For each mode (supervised: the default `node-fpm` command, a supervisor parent and the server
// child; no-supervisor: `--no-supervisor`, the server alone) and --starts times, alternately with a
// static pool of --threads threads and with a static pool of 1 thread:
//   1. spawns node-fpm (bin/node-fpm.js: the build in dist/, on this Node, one static pool serving bench/apps/ on a unix
//      socket, bench/node-fpm-process.ts) and takes the time;
//   2. first response: as soon as the socket exists, sends GET /hello.mjs (retrying every 5 ms while
//      the connection is refused) until a response is 200 `Hello, World!`: the time from the spawn;
//   3. ready line: the time from the spawn to the "ready to handle connections" log line (the
//      line's own `time`, so the reading does not depend on when the file is read); the pool
//      says it once its first threads (one per CPU) are up, and the others boot after it: "all
//      threads" is the time to the pool's "N initial threads ready" line;
//   4. makes every thread serve a request: batches of --threads concurrent GET /sleep.mjs (10 ms
//      each, so that they spread over the threads), until the status page (`?json&full`) shows
//      every thread with at least one request;
//   5. waits --settle-ms idle, then reads VmRSS of the server process (/proc/PID/status; the median
//      of 3 readings 200 ms apart) and of the supervisor.
// Idle RSS per thread = (median RSS with N threads - median RSS with 1 thread) / (N - 1).
// Medians over the starts; printed and written to bench/results/startup-<timestamp>.json.
//
//   node bench/startup.ts [--threads 8] [--starts 5] [--modes supervised,no-supervisor] [--settle-ms 1000] [--json]
//
// Linux only (/proc). See bench/README.md.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import { acceptMode, parseOptions, wholeNumber } from './cli-options.ts'
import { buildCgiParams, fcgiRequest } from '../src/client/fcgi-client.ts'
import { benchEnvironment, environmentAtEnd, fileStamp, RESULTS_DIR } from './environment.ts'
import { formatTable, median, round } from './figures.ts'
import { sleep } from './managed-process.ts'
import { readyLineTime, serverPid, spawnNodeFpm, threadsReadyLineTime } from './node-fpm-process.ts'
import type { NodeFpmHandle } from './node-fpm-process.ts'

const START_DEADLINE_MS = 30_000
const MAX_SPREAD_BATCHES = 100
/** The issue's targets (issue 5). */
const TARGET_READY_MS = 300
const TARGET_IDLE_THREAD_MIB = 13

type Mode = 'supervised' | 'no-supervisor'

interface Options {
  threads: number
  starts: number
  modes: Mode[]
  settleMs: number
  accept: 'main' | 'threads'
  json?: boolean
}

interface StartSample {
  mode: Mode
  threads: number
  start: number
  firstResponseMs: number
  readyLineMs: number
  /** To the pool's "N initial threads ready" line. */
  allThreadsMs: number
  /** Batches of concurrent requests it took until every thread had served one. */
  spreadBatches: number
  /** Every thread had served a request, per the status page (false: the page did not say). */
  everyThreadServed: boolean
  serverRssKiB: number
  /** The supervisor's own RSS (supervised mode), else null. */
  supervisorRssKiB: number | null
}

function modeList (v: string): Mode[] {
  const out = v.split(',').map(s => {
    const t = s.trim()
    if (t !== 'supervised' && t !== 'no-supervisor') throw new InvalidArgumentError(`--modes takes supervised, no-supervisor or both; got '${s}'`)
    return t as Mode
  })
  return [...new Set(out)]
}

function rssKiB (pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

async function get (h: NodeFpmHandle, uri: string): Promise<{ status: number, body: Buffer }> {
  const res = await fcgiRequest(h.address, { params: buildCgiParams({ uri, documentRoot: h.appsDir }) }, { timeoutMs: 20_000, connectTimeoutMs: 1000 })
  return { status: res.status, body: res.body }
}

function assertRunning (h: NodeFpmHandle, what: string): void {
  if (h.exited()) throw new Error(`node-fpm exited while ${what}:\n${h.logText()}\n--- config ---\n${h.configText}`)
}

async function firstResponse (h: NodeFpmHandle): Promise<number> {
  const deadline = Date.now() + START_DEADLINE_MS
  let lastError = ''
  for (;;) {
    assertRunning(h, 'starting')
    if (Date.now() > deadline) throw new Error(`no response from node-fpm within ${START_DEADLINE_MS} ms (${lastError}):\n${h.logText()}`)
    if (existsSync(h.address)) {
      try {
        const res = await get(h, '/hello.mjs')
        if (res.status === 200 && res.body.toString() === 'Hello, World!') return performance.now() - h.spawnedAtMs
        throw new Error(`GET /hello.mjs: status ${res.status}, body ${JSON.stringify(res.body.subarray(0, 200).toString())}`)
      } catch (err) {
        const code = (err as { code?: string, cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code
        lastError = (err as Error).message
        // Refused or missing: the socket is not listening yet; anything else is a real failure.
        if (!/ECONNREFUSED|ENOENT/.test(`${code ?? ''} ${lastError}`)) throw err
      }
    }
    await sleep(5)
  }
}

async function logLineMs (h: NodeFpmHandle, lineTime: (h: NodeFpmHandle) => number | null, what: string): Promise<number> {
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    const t = lineTime(h)
    if (t !== null) return t - h.spawnedAtEpochMs
    assertRunning(h, 'starting')
    if (Date.now() > deadline) throw new Error(`node-fpm did not log "${what}" within ${START_DEADLINE_MS} ms:\n${h.logText()}`)
    await sleep(10)
  }
}

/** Batches of `threads` concurrent 10 ms requests until the status page shows every thread with a request. */
async function serveOnEveryThread (h: NodeFpmHandle, threads: number): Promise<{ batches: number, verified: boolean }> {
  for (let batch = 1; batch <= MAX_SPREAD_BATCHES; batch++) {
    const results = await Promise.all(Array.from({ length: threads }, () => get(h, '/sleep.mjs')))
    const bad = results.find(r => r.status !== 200)
    if (bad !== undefined) throw new Error(`GET /sleep.mjs: status ${bad.status}, body ${JSON.stringify(bad.body.subarray(0, 200).toString())}`)
    const page = await get(h, '/status?json&full')
    if (page.status !== 200) throw new Error(`GET /status?json&full: status ${page.status}`)
    const processes = (JSON.parse(page.body.toString()) as { processes?: Array<{ requests: number }> }).processes ?? []
    // A node-fpm whose page lists no threads cannot tell: one batch, unverified.
    if (processes.length === 0) return { batches: batch, verified: false }
    if (processes.length >= threads && processes.filter(p => p.requests >= 1).length >= threads) return { batches: batch, verified: true }
  }
  return { batches: MAX_SPREAD_BATCHES, verified: false }
}

async function measureStart (mode: Mode, threads: number, start: number, settleMs: number, accept: 'main' | 'threads'): Promise<StartSample> {
  const noSupervisor = mode === 'no-supervisor'
  const h = await spawnNodeFpm({ workers: threads, noSupervisor, poolDirectives: `pm.status_path = /status\npm.accept = ${accept}` })
  try {
    const firstResponseMs = await firstResponse(h)
    const readyLineMs = await logLineMs(h, readyLineTime, 'ready to handle connections')
    const allThreadsMs = await logLineMs(h, threadsReadyLineTime, 'N initial threads ready')
    const spread = await serveOnEveryThread(h, threads)
    await sleep(settleMs)
    const pid = serverPid(h, noSupervisor)
    if (pid === null) throw new Error(`cannot find the server process (child of the supervisor ${h.pid})`)
    const readings: number[] = []
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(200)
      readings.push(rssKiB(pid))
    }
    return {
      mode,
      threads,
      start,
      firstResponseMs: round(firstResponseMs, 1),
      readyLineMs,
      allThreadsMs,
      spreadBatches: spread.batches,
      everyThreadServed: spread.verified,
      serverRssKiB: median(readings),
      supervisorRssKiB: noSupervisor ? null : rssKiB(h.pid)
    }
  } finally {
    await h.stop()
  }
}

interface ModeSummary {
  mode: Mode
  threads: number
  starts: number
  /** Medians over the starts, with `threads` threads and with 1. */
  firstResponseMs: number
  readyLineMs: number
  allThreadsMs: number
  firstResponseMs1: number
  readyLineMs1: number
  serverRssMiB: number
  serverRssMiB1: number
  supervisorRssMiB: number | null
  /** (serverRssMiB - serverRssMiB1) / (threads - 1). */
  idleRssPerThreadMiB: number
  everyThreadServed: boolean
  perStart: { firstResponseMs: number[], readyLineMs: number[], allThreadsMs: number[], serverRssMiB: number[], serverRssMiB1: number[] }
}

function mib (kib: number): number {
  return round(kib / 1024, 1)
}

function summarize (mode: Mode, threads: number, samples: StartSample[]): ModeSummary {
  const big = samples.filter(s => s.mode === mode && s.threads === threads)
  const one = samples.filter(s => s.mode === mode && s.threads === 1)
  const rssBig = median(big.map(s => s.serverRssKiB))
  const rssOne = median(one.map(s => s.serverRssKiB))
  const sup = big.flatMap(s => s.supervisorRssKiB === null ? [] : [s.supervisorRssKiB])
  return {
    mode,
    threads,
    starts: big.length,
    firstResponseMs: round(median(big.map(s => s.firstResponseMs)), 1),
    readyLineMs: median(big.map(s => s.readyLineMs)),
    allThreadsMs: median(big.map(s => s.allThreadsMs)),
    firstResponseMs1: round(median(one.map(s => s.firstResponseMs)), 1),
    readyLineMs1: median(one.map(s => s.readyLineMs)),
    serverRssMiB: mib(rssBig),
    serverRssMiB1: mib(rssOne),
    supervisorRssMiB: sup.length === 0 ? null : mib(median(sup)),
    idleRssPerThreadMiB: round((rssBig - rssOne) / 1024 / (threads - 1), 2),
    everyThreadServed: big.every(s => s.everyThreadServed) && one.every(s => s.everyThreadServed),
    perStart: {
      firstResponseMs: big.map(s => s.firstResponseMs),
      readyLineMs: big.map(s => s.readyLineMs),
      allThreadsMs: big.map(s => s.allThreadsMs),
      serverRssMiB: big.map(s => mib(s.serverRssKiB)),
      serverRssMiB1: one.map(s => mib(s.serverRssKiB))
    }
  }
}

async function main (): Promise<void> {
  const program = new Command('bench:startup')
    .description('node-fpm start-up time (to the first response and to the "ready to handle connections" line) and idle RSS per thread.')
    .option('--threads <n>', 'pm.max_children of the big pool (static); the small one has 1', wholeNumber('--threads', 2), 8)
    .option('--starts <n>', 'starts per mode and pool size; the figures are medians', wholeNumber('--starts', 1), 5)
    .option('--modes <list>', 'supervised (the default node-fpm command), no-supervisor (--no-supervisor), or both', modeList, ['supervised', 'no-supervisor'] as Mode[])
    .option('--settle-ms <ms>', 'idle time before reading RSS', wholeNumber('--settle-ms', 0), 1000)
    .option('--accept <who>', "node-fpm's pm.accept: main or threads", acceptMode, 'main')
    .option('--json', 'print the results file instead of the table')
    .addHelpText('after', '\nExit status: 0 done (whatever the figures), 2 the bench could not run.\nSee bench/README.md.')
    .showHelpAfterError()
    .exitOverride()
  const opts = parseOptions<Options>(program)
  if (opts === null) return
  if (process.platform !== 'linux') throw new Error('bench:startup reads /proc: Linux only')
  const say = (s: string): void => { if (opts.json !== true) process.stderr.write(s + '\n') }
  // Ctrl-C: Node's default would skip the 'exit' hook of managed-process.ts; exit normally so that it runs.
  process.once('SIGINT', () => { say('\ninterrupted'); process.exit(130) })
  process.once('SIGTERM', () => { process.exit(143) })

  const env = benchEnvironment()
  const started = new Date()
  const samples: StartSample[] = []
  const total = opts.modes.length * opts.starts * 2
  let done = 0
  for (const mode of opts.modes) {
    for (let i = 1; i <= opts.starts; i++) {
      // Alternate the sizes, so that drift of the machine hits both alike.
      for (const threads of i % 2 === 1 ? [opts.threads, 1] : [1, opts.threads]) {
        done++
        const s = await measureStart(mode, threads, i, opts.settleMs, opts.accept)
        samples.push(s)
        say(`[${done}/${total}] ${mode}, ${threads} thread${threads > 1 ? 's' : ''}: first response ${s.firstResponseMs} ms, ready line ${s.readyLineMs} ms, all threads ${s.allThreadsMs} ms, ` +
          `server RSS ${mib(s.serverRssKiB)} MiB${s.supervisorRssKiB !== null ? `, supervisor ${mib(s.supervisorRssKiB)} MiB` : ''}` +
          `${s.everyThreadServed ? '' : ' (every thread served: not verified)'}`)
      }
    }
  }
  const summary = opts.modes.map(m => summarize(m, opts.threads, samples))
  const result = {
    date: started.toISOString(),
    bench: 'bench/startup.ts',
    options: { threads: opts.threads, starts: opts.starts, modes: opts.modes, settleMs: opts.settleMs },
    env: { ...env, ...environmentAtEnd(env) },
    targets: { readyMs: TARGET_READY_MS, readyThreads: 8, idleRssPerThreadMiB: TARGET_IDLE_THREAD_MIB },
    summary,
    samples
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `startup-${fileStamp(started)}.json`)
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    return
  }
  const n = opts.threads
  const head = ['mode', `first response ms (${n} thr)`, `ready line ms (${n} thr)`, `all threads ms (${n} thr)`, 'first response ms (1 thr)', 'ready line ms (1 thr)',
    `server RSS MiB (${n} thr)`, 'server RSS MiB (1 thr)', 'supervisor RSS MiB', 'idle RSS per thread MiB']
  const rows = summary.map(s => [s.mode, s.firstResponseMs.toFixed(1), String(s.readyLineMs), String(s.allThreadsMs), s.firstResponseMs1.toFixed(1), String(s.readyLineMs1),
    s.serverRssMiB.toFixed(1), s.serverRssMiB1.toFixed(1), s.supervisorRssMiB === null ? '-' : s.supervisorRssMiB.toFixed(1), s.idleRssPerThreadMiB.toFixed(2)])
  const out = ['', `${opts.starts} starts per mode and size (medians), Node ${process.version}, ${env.cpus} CPUs, load ${env.loadAvg.join(' ')}`, '',
    formatTable(head, rows, ['mode']), '']
  for (const s of summary) {
    const ready = Math.max(s.firstResponseMs, s.readyLineMs)
    out.push(`${s.mode}: ready ${ready <= TARGET_READY_MS ? '<=' : '>'} ${TARGET_READY_MS} ms with ${n} threads` +
      `${n === 8 ? '' : ' (the target is for 8)'} (${ready} ms, the later of first response and ready line; all ${n} threads up at ${s.allThreadsMs} ms); ` +
      `idle RSS per thread ${s.idleRssPerThreadMiB <= TARGET_IDLE_THREAD_MIB ? '<=' : '>'} ${TARGET_IDLE_THREAD_MIB} MiB (${s.idleRssPerThreadMiB} MiB)` +
      `${s.everyThreadServed ? '' : '; every thread served a request: NOT verified by the status page'}`)
  }
  if (result.env.speedChange !== null) out.push('', result.env.speedChange)
  out.push('', `results: ${path.relative(process.cwd(), file)}`)
  process.stdout.write(out.join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:startup: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 2
})
