// `npm run bench:nginx`: node-fpm through a real nginx, against php-fpm through the same nginx and
// against a plain node:http server behind nginx's proxy_pass (what a Node user runs instead),
// measured with wrk.
//
// Backends (all on unix sockets, started once per --workers value):
//   node-fpm   one static pool of `workers` threads serving bench/apps/     (bench/node-fpm-process.ts)
//   php-fpm    one static pool of `workers` processes serving bench/php/    (bench/php-fpm.ts)
//   node:http  one process, bench/apps/node-http.ts (whatever --workers says: that is what it is)
// Each is reached through nginx two ways: nginx's default (a new upstream connection per request)
// and upstream keepalive (`keepalive 16`, plus `fastcgi_keep_conn on` for FastCGI, or
// `proxy_http_version 1.1` and an empty Connection header for HTTP).
//
// Every run starts its own nginx (a few ms) and stops it after (fast shutdown): a run never
// inherits upstream connections kept by the previous one. That matters for php-fpm, whose worker
// stays tied to a kept connection until nginx closes it: a kept connection left over from a
// keepalive run would starve the next run of that worker.
//
// A run: nginx starts, one GET is checked (status 200, body byte-identical to what the node-fpm
// handler returns), wrk warms up (not measured), wrk measures with --latency, nginx stops. Around
// the measured part the CPU time of nginx's processes and of the backend's (all processes and
// threads, /proc) is read: the table shows both per request, where the time of one request goes. Runs
// alternate the order of the targets round by round; the table shows medians over the rounds.
//
//   node bench/nginx.ts [--workers 2[,8]] [--rounds 3] [--duration 5] [--warmup 1] [--connections 16]
//                       [--threads 2] [--scenarios hello,json] [--servers node-fpm,php-fpm,node-http]
//                       [--keepalive yes,no] [--nginx-workers 1|N|auto] [--timeout 2] [--json]
//
// See bench/README.md.

import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Command, InvalidArgumentError } from 'commander'
import { acceptMode, parseOptions, wholeNumber, wholeNumberList } from './cli-options.ts'
import { benchEnvironment, environmentAtEnd, fileStamp, RESULTS_DIR } from './environment.ts'
import { formatTable, median, round } from './figures.ts'
import { forget, hasExited, sleep, spawnManaged, stopManaged, stopper } from './managed-process.ts'
import { findNginx, nginxVersion, startFront } from './nginx-front.ts'
import type { FrontHandle } from './nginx-front.ts'
import { APPS_DIR, startNodeFpm } from './node-fpm-process.ts'
import { findPhpFpm, phpFpmVersion, startPhpFpm } from './php-fpm.ts'
import { processTreeCpu } from './process-cpu.ts'
import type { CpuReader } from './process-cpu.ts'
import { findWrk, runningWrk, runWrk, wrkVersion } from './wrk.ts'
import type { WrkResult } from './wrk.ts'

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url)).replace(/\/$/, '')
const NODE_HTTP_APP = path.join(BENCH_DIR, 'apps', 'node-http.ts')
/** Warm-up of a target's first run of each scenario, at least (its JIT has not seen the code yet). */
const FIRST_WARMUP_S = 2
const UPSTREAM_KEEPALIVE = 16

// ---- scenarios and targets ------------------------------------------------------------------------

interface Scenario {
  name: string
  /** node-fpm handler in bench/apps/ and php script in bench/php/ (same base name). */
  base: string
  /** node:http path. */
  httpPath: string
}

const SCENARIOS: Scenario[] = [
  { name: 'hello', base: 'hello', httpPath: '/hello' },
  { name: 'json', base: 'json', httpPath: '/json' }
]

type ServerName = 'node-fpm' | 'php-fpm' | 'node:http'
const SERVER_NAMES: ServerName[] = ['node-fpm', 'php-fpm', 'node:http']

interface Target {
  server: ServerName
  keepalive: boolean
}

function targetLabel (t: Target): string {
  const via = t.server === 'node:http' ? 'proxy_pass' : 'fastcgi_pass'
  return `${via}, ${t.keepalive ? 'keepalive' : 'new conn'}`
}

/** Expected bodies: what the node-fpm handlers return, run here (the other servers must match them). */
async function expectedBodies (): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const s of SCENARIOS) {
    const mod = await import(pathToFileURL(path.join(APPS_DIR, `${s.base}.mjs`)).href) as { default: { fetch: () => Response | Promise<Response> } }
    out.set(s.name, Buffer.from(await (await mod.default.fetch()).arrayBuffer()))
  }
  return out
}

// ---- options --------------------------------------------------------------------------------------

interface Options {
  workers: number[]
  rounds: number
  duration: number
  warmup: number
  connections: number[]
  threads: number
  scenarios: string[]
  servers: ServerName[]
  keepalive: boolean[]
  nginxWorkers: number | 'auto'
  /** node-fpm's pm.accept. */
  accept: 'main' | 'threads'
  timeout: number
  json?: boolean
}

function scenarioList (v: string): string[] {
  const names = v === 'all' ? SCENARIOS.map(s => s.name) : v.split(',').map(s => s.trim())
  for (const n of names) {
    if (!SCENARIOS.some(s => s.name === n)) throw new InvalidArgumentError(`unknown scenario '${n}' (known: ${SCENARIOS.map(s => s.name).join(', ')})`)
  }
  return [...new Set(names)]
}

function serverList (v: string): ServerName[] {
  const names = v.split(',').map(s => {
    const t = s.trim() === 'node-http' ? 'node:http' : s.trim()
    if (!SERVER_NAMES.includes(t as ServerName)) throw new InvalidArgumentError(`unknown server '${s}' (known: node-fpm, php-fpm, node-http)`)
    return t as ServerName
  })
  return [...new Set(names)]
}

function keepaliveList (v: string): boolean[] {
  const out = v.split(',').map(s => {
    const t = s.trim().toLowerCase()
    if (['yes', 'on', 'keep', 'keepalive'].includes(t)) return true
    if (['no', 'off', 'new'].includes(t)) return false
    throw new InvalidArgumentError(`--keepalive takes yes, no or yes,no; got '${s}'`)
  })
  return [...new Set(out)]
}

function nginxWorkers (v: string): number | 'auto' {
  if (v === 'auto') return 'auto'
  return wholeNumber('--nginx-workers', 1)(v)
}

// ---- backends -------------------------------------------------------------------------------------

interface Backend {
  server: ServerName
  /** nginx's upstream: the unix socket, FastCGI or HTTP. */
  socket: string
  protocol: 'fastcgi' | 'http'
  documentRoot?: string
  path: (s: Scenario) => string
  /** The backend's root process: its tree's CPU time is read around each measured run. */
  pid: number | null
  stop: () => Promise<void>
}

async function startNodeHttp (): Promise<Backend> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-fpm-node-http-'))
  const socket = path.join(dir, 'node-http.sock')
  const log = path.join(dir, 'node-http.log')
  const managed = spawnManaged(process.execPath, [NODE_HTTP_APP, socket], log, { dir, group: false, deathSignal: 'SIGTERM' })
  const deadline = Date.now() + 10_000
  while (!await canConnect(socket)) {
    if (hasExited(managed.child) || Date.now() > deadline) {
      forget(managed)
      await stopManaged(managed, ['SIGTERM'])
      await rm(dir, { recursive: true, force: true })
      throw new Error(`node:http (${NODE_HTTP_APP}) did not listen on ${socket} within 10 s`)
    }
    await sleep(10)
  }
  return {
    server: 'node:http',
    socket,
    protocol: 'http',
    path: (s) => s.httpPath,
    pid: managed.child.pid ?? null,
    stop: stopper(managed, ['SIGTERM'])
  }
}

function canConnect (socketPath: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ path: socketPath })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

async function startBackend (server: ServerName, workers: number, accept: 'main' | 'threads'): Promise<Backend> {
  if (server === 'node-fpm') {
    const h = await startNodeFpm({ workers, poolDirectives: accept === 'threads' ? 'pm.accept = threads' : undefined })
    return { server, socket: h.address, protocol: 'fastcgi', documentRoot: h.appsDir, path: (s) => `/${s.base}.mjs`, pid: h.pid, stop: () => h.stop() }
  }
  if (server === 'php-fpm') {
    const h = await startPhpFpm({ workers })
    return { server, socket: h.address, protocol: 'fastcgi', documentRoot: h.scriptDir, path: (s) => `/${s.base}.php`, pid: h.pid, stop: () => h.stop() }
  }
  return await startNodeHttp()
}

// ---- clean shutdown -------------------------------------------------------------------------------

/** What is running now, stopped on Ctrl-C (each stop is idempotent). */
const live = new Set<{ stop: () => Promise<void> }>()
let interrupted = false

function track<T extends { stop: () => Promise<void> }> (x: T): T {
  live.add(x)
  return x
}

async function untrackStop (x: { stop: () => Promise<void> }): Promise<void> {
  try { await x.stop() } finally { live.delete(x) }
}

function installSignalHandlers (say: (s: string) => void): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) process.exit(130) // a second Ctrl-C: the exit hook of managed-process.ts SIGKILLs what is left
    interrupted = true
    say(`\n${sig}: stopping wrk, nginx and the servers...`)
    runningWrk()?.kill('SIGTERM')
    void Promise.allSettled([...live].map(x => x.stop())).then(() => { process.exit(130) })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}

// ---- one run --------------------------------------------------------------------------------------

/** One GET through nginx; throws unless it is 200 with exactly the expected body. */
async function checkOnce (url: string, expected: Buffer): Promise<void> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new Error(`check GET ${url} failed: ${(err as Error).message}`)
  }
  const body = Buffer.from(await res.arrayBuffer())
  if (res.status !== 200 || !body.equals(expected)) {
    throw new Error(`check GET ${url}: status ${res.status}, ${body.length} bytes` +
      `${body.equals(expected) ? '' : ` (expected ${expected.length} bytes: ${JSON.stringify(expected.subarray(0, 60).toString())}...)`}: ` +
      JSON.stringify(body.subarray(0, 300).toString()))
  }
}

interface Run {
  workers: number
  scenario: string
  connections: number
  server: ServerName
  keepalive: boolean
  round: number
  warmupS: number
  result: WrkResult
  /** CPU time per request over the measured run (µs), nginx's processes and the backend's (all its processes and threads); null off Linux. */
  cpuUs: { nginx: number | null, backend: number | null }
  wrkOutput: string
}

// ---- summaries ------------------------------------------------------------------------------------

interface TargetSummary extends Target {
  /** Medians over the rounds. */
  rps: number
  p50: number
  p90: number
  p99: number
  /** CPU µs per request, medians over the rounds (null: not measured). */
  nginxCpuUs: number | null
  backendCpuUs: number | null
  /** Sums over the rounds. */
  errors: number
  errorsByKind: Record<string, number>
  rpsPerRound: number[]
}

interface Ratios { newConn: number | null, keepalive: number | null, best: number | null }

interface CellSummary {
  workers: number
  scenario: string
  connections: number
  targets: TargetSummary[]
  /** req/s of node-fpm divided by php-fpm's, and by node:http's: per upstream mode, and best mode against best mode. */
  nodeFpmVsPhpFpm: Ratios
  nodeFpmVsNodeHttp: Ratios
}

function summarize (t: Target, runs: Run[]): TargetSummary {
  const byKind: Record<string, number> = {}
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.result.errors)) if (k !== 'total' && v > 0) byKind[k] = (byKind[k] ?? 0) + v
  }
  return {
    ...t,
    rps: round(median(runs.map(r => r.result.rps)), 1),
    p50: round(median(runs.map(r => r.result.latency.p50)), 3),
    p90: round(median(runs.map(r => r.result.latency.p90)), 3),
    p99: round(median(runs.map(r => r.result.latency.p99)), 3),
    nginxCpuUs: medianOrNull(runs.map(r => r.cpuUs.nginx)),
    backendCpuUs: medianOrNull(runs.map(r => r.cpuUs.backend)),
    errors: runs.reduce((n, r) => n + r.result.errors.total, 0),
    errorsByKind: byKind,
    rpsPerRound: runs.map(r => r.result.rps)
  }
}

function medianOrNull (xs: Array<number | null>): number | null {
  const known = xs.filter((x): x is number => x !== null)
  return known.length === 0 ? null : round(median(known), 1)
}

function ratios (targets: TargetSummary[], a: ServerName, b: ServerName): Ratios {
  const rps = (server: ServerName, keepalive: boolean): number | null =>
    targets.find(t => t.server === server && t.keepalive === keepalive)?.rps ?? null
  const ratio = (x: number | null, y: number | null): number | null => x !== null && y !== null && y > 0 ? round(x / y, 3) : null
  const best = (server: ServerName): number | null => {
    const xs = targets.filter(t => t.server === server).map(t => t.rps)
    return xs.length === 0 ? null : Math.max(...xs)
  }
  return { newConn: ratio(rps(a, false), rps(b, false)), keepalive: ratio(rps(a, true), rps(b, true)), best: ratio(best(a), best(b)) }
}

function resultsTable (cells: CellSummary[], multiWorkers: boolean): string {
  const head = [...(multiWorkers ? ['workers'] : []), 'scenario', 'conns', 'server', 'nginx -> backend', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'CPU us/req nginx', 'backend', 'req/s per round']
  const rows: string[][] = []
  for (const c of cells) {
    c.targets.forEach((t, i) => {
      const first = i === 0
      rows.push([
        ...(multiWorkers ? [first ? String(c.workers) : ''] : []),
        first ? c.scenario : '', first ? String(c.connections) : '',
        t.server, targetLabel(t), t.rps.toFixed(1), t.p50.toFixed(3), t.p99.toFixed(3),
        t.errors === 0 ? '0' : `${t.errors} (${Object.entries(t.errorsByKind).map(([k, v]) => `${k} ${v}`).join(', ')})`,
        t.nginxCpuUs === null ? '-' : t.nginxCpuUs.toFixed(1), t.backendCpuUs === null ? '-' : t.backendCpuUs.toFixed(1),
        t.rpsPerRound.map(x => x.toFixed(0)).join(' ')
      ])
    })
  }
  return formatTable(head, rows, ['workers', 'scenario', 'server', 'nginx -> backend', 'errors', 'req/s per round'])
}

function ratioTable (cells: CellSummary[], multiWorkers: boolean): string {
  const x = (r: number | null): string => r === null ? '-' : `${r.toFixed(2)}x`
  const head = [...(multiWorkers ? ['workers'] : []), 'scenario', 'conns',
    'vs php-fpm: new conn', 'keepalive', 'best/best', 'vs node:http: new conn', 'keepalive ', 'best/best ']
  const rows = cells.map(c => [
    ...(multiWorkers ? [String(c.workers)] : []), c.scenario, String(c.connections),
    x(c.nodeFpmVsPhpFpm.newConn), x(c.nodeFpmVsPhpFpm.keepalive), x(c.nodeFpmVsPhpFpm.best),
    x(c.nodeFpmVsNodeHttp.newConn), x(c.nodeFpmVsNodeHttp.keepalive), x(c.nodeFpmVsNodeHttp.best)
  ])
  return formatTable(head, rows, ['workers', 'scenario'])
}

// ---- main -----------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const program = new Command('bench:nginx')
    .description('node-fpm, php-fpm and a plain node:http server, each through a real nginx (new upstream connection per request, and upstream keepalive), measured with wrk; interleaved rounds, medians.')
    .option('--workers <list>', 'threads of node-fpm and processes of php-fpm (pm = static), comma-separated, e.g. 2,8', wholeNumberList('--workers', 1), [2])
    .option('--rounds <n>', 'runs per target and cell, interleaved; the table shows medians', wholeNumber('--rounds', 1), 3)
    .option('--duration <s>', 'measured seconds per run (whole seconds: wrk -d)', wholeNumber('--duration', 1), 5)
    .option('--warmup <s>', `unmeasured wrk seconds before each run (a target's first run of a scenario: at least ${FIRST_WARMUP_S})`, wholeNumber('--warmup', 0), 1)
    .option('--connections <list>', 'wrk connections (-c), comma-separated', wholeNumberList('--connections', 1), [16])
    .option('--threads <n>', 'wrk threads (-t; at most the connections)', wholeNumber('--threads', 1), 2)
    .option('--scenarios <list>', `comma-separated: ${SCENARIOS.map(s => s.name).join(',')}`, scenarioList, SCENARIOS.map(s => s.name))
    .option('--servers <list>', 'comma-separated: node-fpm,php-fpm,node-http', serverList, SERVER_NAMES)
    .option('--keepalive <list>', 'nginx to backend: no (a new connection per request, nginx\'s default), yes (upstream keepalive), or yes,no', keepaliveList, [false, true])
    .option('--nginx-workers <n>', "nginx's worker_processes: a number or auto", nginxWorkers, 1)
    .option('--accept <who>', "node-fpm's pm.accept: main or threads", acceptMode, 'main')
    .option('--timeout <s>', "wrk's --timeout: a response later than this counts as a timeout error", wholeNumber('--timeout', 1), 2)
    .option('--json', 'print the results file instead of the tables')
    .addHelpText('after', '\nExit status: 0 no errors, 1 some run had errors, 2 the bench could not run.\nSee bench/README.md.')
    .showHelpAfterError()
    .exitOverride()
  const opts = parseOptions<Options>(program)
  if (opts === null) return
  const say = (s: string): void => { if (opts.json !== true) process.stderr.write(s + '\n') }
  installSignalHandlers(say)

  const wrkBin = findWrk()
  const nginxBin = findNginx()
  if (wrkBin === null) throw new Error('wrk not found ($WRK_BIN, /usr/bin/wrk, PATH): apt-get install wrk')
  if (nginxBin === null) throw new Error('nginx not found ($NGINX_BIN, /usr/sbin/nginx, PATH): apt-get install nginx-light')
  const phpBin = findPhpFpm()
  let servers = opts.servers
  if (servers.includes('php-fpm') && phpBin === null) {
    say('php-fpm not found ($PHP_FPM_BIN, /usr/sbin/php-fpm*, PATH): skipping php-fpm (apt-get install php-fpm)')
    servers = servers.filter(s => s !== 'php-fpm')
  }
  const scenarios = SCENARIOS.filter(s => opts.scenarios.includes(s.name))
  const targets: Target[] = servers.flatMap(server => opts.keepalive.map(keepalive => ({ server, keepalive })))
  const expected = await expectedBodies()

  const runCount = opts.workers.length * scenarios.length * opts.connections.length * opts.rounds * targets.length
  const firstRuns = opts.workers.length * scenarios.length * targets.length
  const estimateS = runCount * (opts.warmup + opts.duration + 0.3) + firstRuns * Math.max(0, FIRST_WARMUP_S - opts.warmup)
  say(`${runCount} runs of ${opts.warmup} + ${opts.duration} s (${targets.length} targets: ${servers.join(', ')} x ${opts.keepalive.map(k => k ? 'keepalive' : 'new conn').join(', ')}): about ${Math.ceil(estimateS / 60)} min`)

  const env = benchEnvironment()
  const started = new Date()
  const runs: Run[] = []
  const cells: CellSummary[] = []
  const nginxConfigs: Record<string, string> = {}
  let done = 0
  for (const workers of opts.workers) {
    const backends = new Map<ServerName, Backend>()
    try {
      for (const server of servers) {
        say(`starting ${server}${server === 'node:http' ? ' (one process)' : ` (${workers} ${server === 'node-fpm' ? 'threads' : 'processes'}, pm = static)`}...`)
        backends.set(server, track(await startBackend(server, workers, opts.accept)))
      }
      const warmed = new Set<string>()
      for (const sc of scenarios) {
        for (const connections of opts.connections) {
          const byTarget = new Map<Target, Run[]>(targets.map(t => [t, []]))
          for (let r = 1; r <= opts.rounds; r++) {
            // Alternate the order, so that no target always runs first or last.
            for (const t of r % 2 === 1 ? targets : [...targets].reverse()) {
              if (interrupted) return
              done++
              const backend = backends.get(t.server)!
              const key = `${t.server} ${t.keepalive ? 'keep' : 'new'} ${sc.name}`
              const warmupS = warmed.has(key) ? opts.warmup : Math.max(opts.warmup, FIRST_WARMUP_S)
              warmed.add(key)
              const front: FrontHandle = track(await startFront(nginxBin, {
                protocol: backend.protocol,
                socket: backend.socket,
                keepalive: t.keepalive,
                documentRoot: backend.documentRoot,
                workerProcesses: opts.nginxWorkers,
                keepaliveConnections: UPSTREAM_KEEPALIVE
              }))
              let res: Awaited<ReturnType<typeof runWrk>>
              let cpuUs: Run['cpuUs'] = { nginx: null, backend: null }
              try {
                const confKey = `${t.server} ${t.keepalive ? 'keepalive' : 'new conn'}`
                nginxConfigs[confKey] ??= front.configText
                const url = `${front.url}${backend.path(sc)}`
                await checkOnce(url, expected.get(sc.name)!)
                const threads = Math.min(opts.threads, connections)
                if (warmupS > 0) await runWrk(wrkBin, { url, threads, connections, durationS: warmupS, timeoutS: opts.timeout })
                const nginxCpu = front.pid === null ? null : processTreeCpu(front.pid)
                const backendCpu = backend.pid === null ? null : processTreeCpu(backend.pid)
                const before = { nginx: nginxCpu?.() ?? 0, backend: backendCpu?.() ?? 0 }
                res = await runWrk(wrkBin, { url, threads, connections, durationS: opts.duration, timeoutS: opts.timeout })
                const perRequestUs = (reader: CpuReader | null, startMs: number): number | null =>
                  reader === null || res.result.requests === 0 ? null : round((reader() - startMs) * 1000 / res.result.requests, 1)
                cpuUs = { nginx: perRequestUs(nginxCpu, before.nginx), backend: perRequestUs(backendCpu, before.backend) }
              } finally {
                await untrackStop(front)
              }
              const run: Run = { workers, scenario: sc.name, connections, server: t.server, keepalive: t.keepalive, round: r, warmupS, result: res.result, cpuUs, wrkOutput: res.output }
              runs.push(run)
              byTarget.get(t)!.push(run)
              const e = res.result.errors
              say(`[${done}/${runCount}] w${workers} ${sc.name} c${connections} round ${r} ${t.server} ${targetLabel(t)}: ` +
                `${res.result.rps.toFixed(1)} req/s, p99 ${round(res.result.latency.p99, 3)} ms` +
                (cpuUs.backend !== null ? `, CPU us/req nginx ${cpuUs.nginx ?? '-'} backend ${cpuUs.backend}` : '') +
                (e.total > 0 ? `, errors: ${Object.entries(e).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''))
            }
          }
          const sums = targets.map(t => summarize(t, byTarget.get(t)!))
          cells.push({
            workers,
            scenario: sc.name,
            connections,
            targets: sums,
            nodeFpmVsPhpFpm: ratios(sums, 'node-fpm', 'php-fpm'),
            nodeFpmVsNodeHttp: ratios(sums, 'node-fpm', 'node:http')
          })
        }
      }
    } finally {
      for (const b of [...backends.values()].reverse()) await untrackStop(b)
    }
  }

  const result = {
    date: started.toISOString(),
    bench: 'bench/nginx.ts',
    options: { ...opts, servers, json: undefined },
    env: {
      ...env,
      ...environmentAtEnd(env),
      nginx: nginxVersion(nginxBin),
      wrk: wrkVersion(wrkBin),
      phpFpm: phpBin !== null && servers.includes('php-fpm') ? `${phpBin}: ${phpFpmVersion(phpBin) ?? '?'}` : null
    },
    servers: servers.map(s => ({
      server: s,
      processes: s === 'node:http' ? '1 process (node:http, no cluster)' : s === 'node-fpm' ? '1 process, pm = static, workers = threads' : 'pm = static, workers = processes',
      app: s === 'node-fpm' ? 'bench/apps/{hello,json}.mjs' : s === 'php-fpm' ? 'bench/php/{hello,json}.php' : 'bench/apps/node-http.ts'
    })),
    nginx: { workerProcesses: opts.nginxWorkers, upstreamKeepalive: UPSTREAM_KEEPALIVE, accessLog: 'off', configs: nginxConfigs },
    nodeFpmAccept: opts.accept,
    summary: cells,
    runs
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `nginx-${fileStamp(started)}.json`)
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')

  if (opts.json === true) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  } else {
    const multi = opts.workers.length > 1
    const out = ['',
      `through nginx ${result.env.nginx ?? '?'} (worker_processes ${opts.nginxWorkers}, access_log off), wrk -t${opts.threads} -d${opts.duration}s after ${opts.warmup} s of warm-up, ` +
      `${opts.rounds} round${opts.rounds > 1 ? 's' : ''} (medians), ${multi ? `workers ${opts.workers.join(',')}` : `${opts.workers[0]} workers`} (node-fpm threads, php-fpm processes; node:http is one process), ` +
      `Node ${process.version}, ${env.cpus} CPUs, load ${env.loadAvg.join(' ')}`,
      '', resultsTable(cells, multi),
      '', 'node-fpm req/s divided by the others\' (above 1: node-fpm is faster; best/best: each server in its faster mode)',
      '', ratioTable(cells, multi)]
    if (cells.some(c => c.connections > c.workers && c.targets.some(t => t.server === 'php-fpm' && t.keepalive))) {
      out.push('', 'note: a php-fpm worker serves one kept connection until nginx closes it (upstream keepalive_requests, 1000 by default). ' +
        'With more connections than workers, the requests nginx sends on its other upstream connections wait in php-fpm\'s listen ' +
        'backlog meanwhile: php-fpm\'s keepalive req/s is real, and its p99 is that wait (a wait beyond --timeout counts as a wrk timeout error).')
    }
    if (result.env.speedChange !== null) out.push('', result.env.speedChange)
    out.push('', `results: ${path.relative(process.cwd(), file)}`)
    process.stdout.write(out.join('\n') + '\n')
  }
  if (cells.some(c => c.targets.some(t => t.errors > 0))) process.exitCode = 1
}

main().catch((err: unknown) => {
  if (interrupted) return
  process.stderr.write(`bench:nginx: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 2
})
