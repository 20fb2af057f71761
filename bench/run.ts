// `npm run bench`: node-fpm against php-fpm on the same scenarios, measured with the project's
// FastCGI load generator (src/bench/load-generator.ts, what `node-fpm bench` runs).
//
// Starts node-fpm (bin/node-fpm.js, i.e. the build in dist/, with a generated config: one static pool per scenario, serving
// bench/apps/) and, when php-fpm is installed (bench/php-fpm.ts), php-fpm with the same number of
// workers (pm = static, unix socket) serving bench/php/. Both answer byte-identical bodies, and
// every response is checked. For each cell of the matrix (workers x scenario x connections x
// keep-conn) the runs alternate between the servers round by round, so that drift of the machine
// hits both alike; the table shows the medians over the rounds and the node-fpm / php-fpm ratios.
// The figures and the environment go to bench/results/<timestamp>.json, the chart to
// bench/results/<timestamp>.svg.
//
//   node bench/run.ts [--scenarios hello,json,sleep,big,echo,cpu] [--connections 16] [--keep-conn yes,no]
//                     [--workers 2] [--rounds 3] [--duration 2] [--warmup 0.5] [--full]
//                     [--vs php-fpm|none] [--io-concurrency N] [--codec] [--json]
//
// See bench/README.md.

import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { tierUpEarly } from '../src/bench/early-tier-up.ts'
import { runLoad } from '../src/bench/load-generator.ts'
import type { LoadOptions, LoadResult } from '../src/bench/load-generator.ts'
import { renderResultsChart } from './chart.ts'
import { acceptMode, nodeFlagWords, wholeNumber, wholeNumberList } from './cli-options.ts'
import { benchEnvironment, environmentAtEnd, fileStamp, RESULTS_DIR } from './environment.ts'
import { formatTable, median, round } from './figures.ts'
import { hasExited, sleep, spawnManaged, stopper } from './managed-process.ts'
import { APPS_DIR } from './node-fpm-process.ts'
import { findPhpFpm, phpFpmVersion, startPhpFpm } from './php-fpm.ts'
import type { PhpFpmHandle } from './php-fpm.ts'
import { processTreeCpu } from './process-cpu.ts'
import type { CpuReader } from './process-cpu.ts'
import { jitWarmupS } from './jit-warmup.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/\/$/, '')
const START_TIMEOUT_MS = 15_000
/**
 * --jit-warmup comes in this many parts, each on new connections: a thread's JIT keeps
 * deoptimizing and recompiling the socket paths for the first few connections that open and close
 * after its code was optimized (measured: 22, 11, 6, then 0 deopts over four 3 s runs at 5k req/s).
 */
const JIT_WARMUP_PARTS = 3
/** Per-request time limit in the JIT warm-up: php-fpm leaves kept connections beyond its workers unanswered, so end them soon. */
const JIT_WARMUP_TIMEOUT_MS = 1000

// ---- scenarios ------------------------------------------------------------------------------------

interface Scenario {
  name: string
  /** Panel and table title. */
  title: string
  /** node-fpm handler in bench/apps/, php-fpm script in bench/php/ (same name). */
  base: string
  /** What every response body must be (both servers), or 'echo': the request body. */
  expect: Buffer | 'echo'
  /** Request body size (POST), 0 for GET. */
  dataSize: number
}

function jsonBody (): Buffer {
  // The code in bench/php/json.php's comment, run here: both servers must send exactly this.
  const items = []
  for (let i = 1; i <= 17; i++) {
    items.push({ id: i, name: `item-${i}`, price: i * 250 + 99, qty: (i * 7) % 13, active: i % 3 !== 0, tags: ['tag' + (i % 4), 'group' + (i % 5)] })
  }
  return Buffer.from(JSON.stringify({ status: 'ok', page: 1, total: 17, items }))
}

function cpuBody (): Buffer {
  let h = 0
  for (let i = 0; i < 260000; i++) h = (h * 31 + i) % 1000000007
  return Buffer.from(String(h))
}

const HELLO = Buffer.from('Hello, World!')

const SCENARIOS: Scenario[] = [
  { name: 'hello', title: 'hello (13 B)', base: 'hello', expect: HELLO, dataSize: 0 },
  { name: 'json', title: 'json (1.5 KB)', base: 'json', expect: jsonBody(), dataSize: 0 },
  { name: 'sleep', title: 'sleep (10 ms wait)', base: 'sleep', expect: HELLO, dataSize: 0 },
  { name: 'big', title: 'big (64 KiB out)', base: 'big', expect: Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n'.repeat(1024)), dataSize: 0 },
  { name: 'echo', title: 'echo (1 MiB POST)', base: 'echo', expect: 'echo', dataSize: 1024 * 1024 },
  { name: 'cpu', title: 'cpu (2 ms CPU)', base: 'cpu', expect: cpuBody(), dataSize: 0 }
]

// ---- options --------------------------------------------------------------------------------------

interface BenchOptions {
  scenarios: string[]
  connections: number[]
  keepConn: boolean[]
  workers: number[]
  rounds: number
  duration: number
  warmup: number
  /** Seconds; undefined: the default for the workers (bench/jit-warmup.ts). */
  jitWarmup?: number
  full?: boolean
  vs?: string
  ioConcurrency?: number
  accept: 'main' | 'threads'
  nodeFlags: string[]
  rate?: number
  codec?: boolean
  json?: boolean
}

function seconds (name: string, min: number) {
  return (v: string): number => {
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number of seconds >= ${min}`)
    return n
  }
}

function scenarioList (v: string): string[] {
  const names = v === 'all' ? SCENARIOS.map(s => s.name) : v.split(',').map(s => s.trim())
  for (const n of names) {
    if (!SCENARIOS.some(s => s.name === n)) throw new InvalidArgumentError(`unknown scenario '${n}' (known: ${SCENARIOS.map(s => s.name).join(', ')}, or all)`)
  }
  return [...new Set(names)]
}

function keepConnList (v: string): boolean[] {
  const out = v.split(',').map(s => {
    const t = s.trim().toLowerCase()
    if (['yes', 'on', 'true', '1', 'keep'].includes(t)) return true
    if (['no', 'off', 'false', '0', 'new'].includes(t)) return false
    throw new InvalidArgumentError(`--keep-conn takes yes, no or yes,no; got '${s}'`)
  })
  return [...new Set(out)]
}

// ---- servers under test ---------------------------------------------------------------------------

interface Server {
  name: 'node-fpm' | 'php-fpm'
  workers: number
  /** Address, URI and SCRIPT_FILENAME of each scenario. */
  target: (s: Scenario) => { address: string, uri: string, script: string }
  /** CPU time (ms) of all the server's processes and threads so far; null off Linux. */
  cpu: CpuReader | null
  stop: () => Promise<void>
}

/** The node-fpm config: one static pool per scenario, each on its own unix socket. */
function nodeFpmConfig (dir: string, scenarios: Scenario[], workers: number, ioConcurrency: number | undefined, accept: 'main' | 'threads'): string {
  const lines = [
    '; generated by bench/run.ts',
    '[global]',
    `error_log = ${path.join(dir, 'node-fpm.log')}`,
    'log_level = notice',
    ''
  ]
  for (const s of scenarios) {
    lines.push(
      `[${s.name}]`,
      `listen = ${path.join(dir, `${s.name}.sock`)}`,
      'listen.mode = 0666',
      'pm = static',
      `pm.max_children = ${workers}`,
      `root = ${APPS_DIR}`
    )
    // pm.thread_concurrency: requests one thread runs at once (a node-fpm without the directive
    // refuses the config, naming it).
    if (s.name === 'sleep' && ioConcurrency !== undefined) lines.push(`pm.thread_concurrency = ${ioConcurrency}`)
    if (accept === 'threads') lines.push('pm.accept = threads')
    lines.push('')
  }
  return lines.join('\n')
}

/** Starts node-fpm on a generated config; resolves once every pool's socket accepts connections and its threads are all up. */
async function startNodeFpm (scenarios: Scenario[], workers: number, ioConcurrency: number | undefined, accept: 'main' | 'threads', nodeFlags: readonly string[]): Promise<Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'node-fpm-bench-'))
  const conf = path.join(dir, 'node-fpm.conf')
  const errorLog = path.join(dir, 'node-fpm.log')
  const outLog = path.join(dir, 'stdout.log')
  writeFileSync(conf, nodeFpmConfig(dir, scenarios, workers, ioConcurrency, accept))
  // process.execPath: this script runs on the project's Node 24 (npm run puts node_modules/.bin first).
  // Its own process group under setpriv --pdeathsig (managed-process.ts): it does not outlive the
  // bench, however the bench ends (a SIGTERM to the bench left it running before).
  const managed = spawnManaged(process.execPath, [...nodeFlags, path.join(ROOT, 'bin/node-fpm.js'), '-y', conf], outLog, { dir, group: true, deathSignal: 'SIGTERM' })
  const child = managed.child
  const stop = stopper(managed, ['SIGTERM'])

  const logs = (): string => [errorLog, outLog].map(f => { try { return readFileSync(f, 'utf8') } catch { return '' } }).join('')
  const deadline = Date.now() + START_TIMEOUT_MS
  const sockets = scenarios.map(s => path.join(dir, `${s.name}.sock`))
  for (;;) {
    if (hasExited(child)) {
      const text = logs()
      await stop()
      throw new Error(`node-fpm exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${text}\n--- ${conf} ---\n${nodeFpmConfig(dir, scenarios, workers, ioConcurrency, accept)}`)
    }
    const threadsUp = logs().split('\n').filter(line => /"msg":"\d+ initial threads ready in \d+ ms"/.test(line)).length >= scenarios.length
    if (threadsUp && (await Promise.all(sockets.map(canConnect))).every(Boolean)) break
    if (Date.now() > deadline) {
      const text = logs()
      await stop()
      throw new Error(`node-fpm did not accept connections on ${dir}/*.sock within ${START_TIMEOUT_MS} ms:\n${text}`)
    }
    await sleep(20)
  }
  return {
    name: 'node-fpm',
    workers,
    target: (s) => ({ address: path.join(dir, `${s.name}.sock`), uri: `/${s.base}.mjs`, script: path.join(APPS_DIR, `${s.base}.mjs`) }),
    // The supervisor and the server process it started (with its threads).
    cpu: child.pid === undefined ? null : processTreeCpu(child.pid),
    stop
  }
}

async function startPhp (workers: number): Promise<Server> {
  const handle: PhpFpmHandle = await startPhpFpm({ workers })
  return {
    name: 'php-fpm',
    workers,
    target: (s) => ({ address: handle.address, uri: `/${s.base}.php`, script: path.join(handle.scriptDir, `${s.base}.php`) }),
    cpu: processTreeCpu(handle.pid),
    stop: async () => { await handle.stop() }
  }
}

function canConnect (socketPath: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ path: socketPath })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

/**
 * A server's first run of a scenario: load first, not measured (closed loop, the last part at the
 * run's rate when it has one), so that the run sees compiled code. Each of node-fpm's threads has
 * its own JIT, which needs tens of thousands of requests and a few connections opening and closing
 * to settle (until then its p99 is several ms higher, and the more threads share the load, the
 * longer each takes). php-fpm gets the same.
 */
async function jitWarmup (lo: LoadOptions, seconds: number): Promise<void> {
  const { rate, onMeasure: _onMeasure, ...closedLoop } = lo
  for (let part = 0; part < JIT_WARMUP_PARTS; part++) {
    // With --rate the last part runs open loop like the runs: threads that sleep between requests
    // take other paths (timers, waking) than under full load.
    const open = rate !== undefined && part === JIT_WARMUP_PARTS - 1
    await runLoad({ ...closedLoop, ...(open ? { rate } : {}), warmup: 0, duration: seconds / JIT_WARMUP_PARTS, timeoutMs: JIT_WARMUP_TIMEOUT_MS, check: part === 0 })
  }
}

// ---- figures --------------------------------------------------------------------------------------

interface Cell {
  workers: number
  scenario: string
  connections: number
  keepConn: boolean
}

interface Summary extends Cell {
  server: string
  rounds: number
  /** Medians over the rounds. */
  rps: number
  p50: number
  p90: number
  p99: number
  p999: number
  /** With --rate: median p99 of the generator's own lateness (node-fpm bench's `lateness`), part of p99; else null. */
  lateP99: number | null
  /** Sum over the rounds, and by kind. */
  errors: number
  errorsByKind: Record<string, number>
  /** Fewest connections served in a round. */
  connectionsServed: number
  rpsPerRound: number[]
  /** Median of the generator's own CPU use, in cores. */
  clientCpu: number
  /** Median CPU time of the server (all its processes and threads) per request measured, µs; null off Linux. */
  serverCpuUs: number | null
}

/** One run against one server: the generator's result, and the server's CPU time per request measured (µs). */
type ServerRun = LoadResult & { serverCpuUs: number | null }

interface CellSummary extends Cell {
  servers: Summary[]
  /** node-fpm / php-fpm (null without php-fpm). */
  ratioRps: number | null
  ratioP99: number | null
}

function summarize (cell: Cell, server: string, runs: ServerRun[]): Summary {
  const byKind: Record<string, number> = {}
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.errors)) if (k !== 'total' && v > 0) byKind[k] = (byKind[k] ?? 0) + v
  }
  return {
    ...cell,
    server,
    rounds: runs.length,
    rps: round(median(runs.map(r => r.rps)), 1),
    p50: round(median(runs.map(r => r.latency.p50)), 3),
    p90: round(median(runs.map(r => r.latency.p90)), 3),
    p99: round(median(runs.map(r => r.latency.p99)), 3),
    p999: round(median(runs.map(r => r.latency.p999)), 3),
    lateP99: runs.every(r => r.lateness !== null) ? round(median(runs.map(r => r.lateness?.p99 ?? 0)), 3) : null,
    errors: runs.reduce((n, r) => n + r.errors.total, 0),
    errorsByKind: byKind,
    connectionsServed: Math.min(...runs.map(r => r.connectionsServed)),
    rpsPerRound: runs.map(r => r.rps),
    clientCpu: round(median(runs.map(r => r.clientCpu)), 2),
    serverCpuUs: runs.every(r => r.serverCpuUs !== null) ? round(median(runs.map(r => r.serverCpuUs ?? 0)), 1) : null
  }
}

function table (cells: CellSummary[], multiWorkers: boolean): string {
  const late = cells.some(c => c.servers.some(s => s.lateP99 !== null))
  const head = [...(multiWorkers ? ['workers'] : []), 'scenario', 'conns', 'keep-conn', 'server', 'req/s', 'p50 ms', 'p99 ms',
    ...(late ? ['late p99 ms'] : []), 'errors',
    'conns served', 'req/s per round', 'CPU us/req', 'node/php req/s', 'node/php p99']
  const rows: string[][] = []
  for (const c of cells) {
    c.servers.forEach((s, i) => {
      const first = i === 0
      rows.push([
        ...(multiWorkers ? [first ? String(c.workers) : ''] : []),
        first ? c.scenario : '', first ? String(c.connections) : '', first ? (c.keepConn ? 'yes' : 'no') : '',
        s.server, s.rps.toFixed(1), s.p50.toFixed(3), s.p99.toFixed(3),
        ...(late ? [s.lateP99 === null ? '-' : s.lateP99.toFixed(3)] : []),
        s.errors === 0 ? '0' : `${s.errors} (${Object.entries(s.errorsByKind).map(([k, v]) => `${k} ${v}`).join(', ')})`,
        `${s.connectionsServed}/${s.connections}`, s.rpsPerRound.map(x => x.toFixed(0)).join(' '),
        s.serverCpuUs === null ? '-' : s.serverCpuUs.toFixed(1),
        first && c.ratioRps !== null ? `${c.ratioRps.toFixed(2)}x` : '',
        first && c.ratioP99 !== null ? `${c.ratioP99.toFixed(2)}x${c.servers.some(x => x.connectionsServed < x.connections) ? '*' : ''}` : ''
      ])
    })
  }
  return formatTable(head, rows, ['workers', 'scenario', 'keep-conn', 'server', 'errors', 'req/s per round'])
}

/** bench/micro/codec.ts --json, in a child process (one core, no sockets). */
function runCodec (): unknown {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/micro/codec.ts'), '--json', '--time=500'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  return JSON.parse(out.toString())
}

// ---- main -----------------------------------------------------------------------------------------

async function main (): Promise<void> {
  tierUpEarly()
  const program = new Command('bench')
    .description('node-fpm and php-fpm (same workers, same load, same answers) on a matrix of scenarios; interleaved rounds, medians.')
    .option('--scenarios <list>', `comma-separated: ${SCENARIOS.map(s => s.name).join(',')} (or all)`, scenarioList, SCENARIOS.map(s => s.name))
    .option('--connections <list>', 'concurrent FastCGI connections, comma-separated (e.g. 1,16,64)', wholeNumberList('--connections', 1), [16])
    .option('--keep-conn <list>', 'yes (FCGI_KEEP_CONN), no (a new connection per request, nginx\'s default), or yes,no', keepConnList, [true, false])
    .option('--workers <list>', 'workers of each server (pm = static, pm.max_children), comma-separated', wholeNumberList('--workers', 1), [2])
    .option('--rounds <n>', 'runs per server and cell, interleaved; the table shows medians', wholeNumber('--rounds', 1), 3)
    .option('--duration <s>', 'measured seconds per run', seconds('--duration', 0.1), 2)
    .option('--warmup <s>', 'warm-up seconds before each run', seconds('--warmup', 0), 0.5)
    .option('--jit-warmup <s>', `before a server's first run of each scenario: seconds of load, not measured, in ${JIT_WARMUP_PARTS} parts on new connections, closed loop (with --rate the last part at that rate): node-fpm's threads compile their hot code; 0: none (default: 6, and 2.5 per worker above 2 workers)`, seconds('--jit-warmup', 0))
    .option('--full', 'the whole matrix: --connections 1,16,64 --keep-conn yes,no (unless given)')
    .option('--vs <server>', "reference server: 'php-fpm' (default when it is installed) or 'none'")
    .option('--accept <who>', "node-fpm's pm.accept: main (the main thread accepts and dispatches) or threads (each thread accepts and serves its connections)", acceptMode, 'main')
    .option('--node-flags <flags>', "node options of node-fpm's process, space-separated (V8 flags apply to its threads too)", nodeFlagWords, [])
    .option('--io-concurrency <n>', 'add pm.thread_concurrency = n to the sleep pool (needs that directive in node-fpm)', wholeNumber('--io-concurrency', 1))
    .option('--rate <req/s>', 'open loop: every run offers this many requests per second (latency at the same load for both servers, from the scheduled time)', wholeNumber('--rate', 1))
    .option('--codec', 'also run the codec micro-benchmark (bench/micro/codec.ts) and keep its figures')
    .option('--json', 'print the result file instead of the table')
    .addHelpText('after', '\nExit status: 0 no errors, 1 some run had errors, 2 the bench could not run.\nSee bench/README.md for what each figure means.')
    .showHelpAfterError()
    .exitOverride()
  const phpBin = findPhpFpm()
  let opts: BenchOptions
  let vs: string
  try {
    program.parse(process.argv)
    opts = program.opts<BenchOptions>()
    if (opts.full === true) {
      if (program.getOptionValueSource('connections') === 'default') opts.connections = [1, 16, 64]
      if (program.getOptionValueSource('keepConn') === 'default') opts.keepConn = [true, false]
    }
    vs = opts.vs ?? (phpBin !== null ? 'php-fpm' : 'none')
    if (vs !== 'php-fpm' && vs !== 'none') program.error(`bench: --vs must be php-fpm or none, got '${vs}'`)
    if (vs === 'php-fpm' && phpBin === null) program.error('bench: --vs php-fpm, but php-fpm is not installed (apt-get install php-fpm)')
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 2
    return
  }

  const scenarios = SCENARIOS.filter(s => opts.scenarios.includes(s.name))
  const say = (s: string): void => { if (opts.json !== true) process.stderr.write(s + '\n') }
  const cellsPerBlock = scenarios.length * opts.connections.length * opts.keepConn.length
  const serverCount = vs === 'php-fpm' ? 2 : 1
  const runCount = opts.workers.length * cellsPerBlock * opts.rounds * serverCount
  const jitWarmupFor = (workers: number): number => jitWarmupS(opts.jitWarmup ?? 'auto', workers)
  const jitWarmupTotal = opts.workers.reduce((sum, w) => sum + jitWarmupFor(w), 0) * scenarios.length * serverCount
  const estimate = runCount * (opts.warmup + opts.duration + 0.2) + jitWarmupTotal
  say(`${runCount} runs of ${opts.warmup} + ${opts.duration} s: about ${Math.ceil(estimate / 60)} min`)

  // A signal ends the run; the exit hook of managed-process.ts then kills the servers and removes their dirs.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { process.exit(130) })
  const started = new Date()
  const env = benchEnvironment()
  const cellSummaries: CellSummary[] = []
  const allRuns: Array<Cell & { server: string, round: number, result: ServerRun }> = []
  const pools: unknown[] = []
  let done = 0
  for (const workers of opts.workers) {
    const servers: Server[] = []
    try {
      say(`starting node-fpm (${scenarios.length} pool${scenarios.length > 1 ? 's' : ''} of ${workers} workers, pm.accept = ${opts.accept}${opts.ioConcurrency !== undefined ? `, sleep pool with pm.thread_concurrency = ${opts.ioConcurrency}` : ''}${opts.nodeFlags.length > 0 ? `, node ${opts.nodeFlags.join(' ')}` : ''})...`)
      servers.push(await startNodeFpm(scenarios, workers, opts.ioConcurrency, opts.accept, opts.nodeFlags))
      if (vs === 'php-fpm') {
        say(`starting php-fpm (${workers} workers)...`)
        servers.push(await startPhp(workers))
      }
      pools.push({
        workers,
        servers: servers.map(s => ({
          server: s.name,
          pm: 'static',
          maxChildren: workers,
          pools: s.name === 'node-fpm' ? scenarios.map(sc => sc.name) : ['bench'],
          threadConcurrency: s.name === 'node-fpm' && opts.ioConcurrency !== undefined ? { sleep: opts.ioConcurrency } : undefined
        }))
      })

      const warmed = new Set<string>()
      for (const sc of scenarios) {
        for (const connections of opts.connections) {
          for (const keepConn of opts.keepConn) {
            const cell: Cell = { workers, scenario: sc.name, connections, keepConn }
            const runs = new Map<Server, ServerRun[]>(servers.map(s => [s, []]))
            for (let r = 1; r <= opts.rounds; r++) {
              // Alternate which server goes first, so that neither always runs on a machine the other just heated.
              const order = r % 2 === 1 ? servers : [...servers].reverse()
              for (const srv of order) {
                done++
                const t = srv.target(sc)
                const first = !warmed.has(`${srv.name} ${sc.name}`)
                warmed.add(`${srv.name} ${sc.name}`)
                const lo: LoadOptions = {
                  address: t.address,
                  uri: t.uri,
                  script: t.script,
                  connections,
                  duration: opts.duration,
                  warmup: opts.warmup,
                  keepConn,
                  expectStatus: 200
                }
                if (opts.rate !== undefined) lo.rate = opts.rate
                if (sc.expect === 'echo') lo.expectEcho = true
                else lo.expectBody = sc.expect
                if (sc.dataSize > 0) lo.dataSize = sc.dataSize
                let cpuAtStartMs = 0
                let cpuMs: number | null = null
                const cpu = srv.cpu
                if (cpu !== null) lo.onMeasure = (edge) => { if (edge === 'start') cpuAtStartMs = cpu(); else cpuMs = cpu() - cpuAtStartMs }
                if (first && jitWarmupFor(workers) > 0) await jitWarmup(lo, jitWarmupFor(workers))
                const loadResult = await runLoad(lo)
                const res: ServerRun = { ...loadResult, serverCpuUs: cpuMs !== null && loadResult.requests > 0 ? round(cpuMs * 1000 / loadResult.requests, 1) : null }
                runs.get(srv)!.push(res)
                allRuns.push({ ...cell, server: srv.name, round: r, result: res })
                say(`[${done}/${runCount}] w${workers} ${sc.name} c${connections} ${keepConn ? 'keep' : 'new'} round ${r} ${srv.name}: ` +
                  `${res.rps.toFixed(1)} req/s, p99 ${res.latency.p99} ms, ${res.errors.total} errors` +
                  (res.serverCpuUs !== null ? `, server CPU ${res.serverCpuUs} us/request` : '') +
                  (res.connectionsServed < res.connections ? `, ${res.connectionsServed}/${res.connections} connections served` : ''))
              }
            }
            const sums = servers.map(s => summarize(cell, s.name, runs.get(s)!))
            const node = sums.find(s => s.server === 'node-fpm')
            const php = sums.find(s => s.server === 'php-fpm')
            cellSummaries.push({
              ...cell,
              servers: sums,
              ratioRps: node !== undefined && php !== undefined && php.rps > 0 ? round(node.rps / php.rps, 3) : null,
              ratioP99: node !== undefined && php !== undefined && php.p99 > 0 ? round(node.p99 / php.p99, 3) : null
            })
          }
        }
      }
    } finally {
      for (const s of servers.reverse()) await s.stop()
    }
  }

  let codec: unknown = null
  if (opts.codec === true) {
    say('codec micro-benchmark (bench/micro/codec.ts)...')
    codec = runCodec()
  }

  const result = {
    date: started.toISOString(),
    options: {
      scenarios: opts.scenarios,
      connections: opts.connections,
      keepConn: opts.keepConn,
      workers: opts.workers,
      rounds: opts.rounds,
      duration: opts.duration,
      warmup: opts.warmup,
      jitWarmup: opts.jitWarmup ?? 'auto',
      vs,
      ioConcurrency: opts.ioConcurrency ?? null,
      accept: opts.accept,
      nodeFlags: opts.nodeFlags,
      rate: opts.rate ?? null
    },
    env: {
      ...env,
      ...environmentAtEnd(env),
      phpFpm: phpBin !== null && vs === 'php-fpm' ? phpFpmVersion(phpBin) : null
    },
    scenarios: scenarios.map(s => ({
      name: s.name,
      title: s.title,
      nodeFpm: `bench/apps/${s.base}.mjs`,
      phpFpm: `bench/php/${s.base}.php`,
      requestBodyBytes: s.dataSize,
      responseBodyBytes: s.expect === 'echo' ? s.dataSize : s.expect.length
    })),
    pools,
    summary: cellSummaries,
    codec,
    runs: allRuns
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = fileStamp(started)
  const file = path.join(RESULTS_DIR, `${stamp}.json`)
  const svgFile = path.join(RESULTS_DIR, `${stamp}.svg`)
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  writeFileSync(svgFile, renderResultsChart(result))

  if (opts.json === true) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  } else {
    const multiWorkers = opts.workers.length > 1
    const out = ['', `${opts.duration} s per run after ${opts.warmup} s of warm-up (${opts.workers.map(jitWarmupFor).join(' / ')} s before a server's first run of a scenario), ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} (medians), ` +
      `${multiWorkers ? `workers ${opts.workers.join(',')}` : `${opts.workers[0]} workers`} per server (pm = static), ` +
      `Node ${process.version}, ${os.cpus().length} CPUs` +
      (opts.rate !== undefined ? `, open loop at ${opts.rate} req/s (latency from the scheduled time)` : ''), '', table(cellSummaries, multiWorkers)]
    const starved = cellSummaries.flatMap(c => c.servers.filter(s => s.server === 'php-fpm' && s.keepConn && s.connectionsServed < s.connections))
    if (starved.length > 0) {
      out.push('', 'note: php-fpm ties a kept connection to one worker until the client closes it, so with keep-conn it serves only as ' +
        'many connections as it has workers; the others got no answer (see "conns served"), and its latency covers only those it served: ' +
        'a p99 ratio marked * compares unlike things.')
    }
    if (result.env.speedChange !== null) out.push('', result.env.speedChange)
    if (codec !== null) out.push('', 'codec micro-benchmark: see "codec" in the results file')
    out.push('', `results: ${path.relative(process.cwd(), file)}`, `chart:   ${path.relative(process.cwd(), svgFile)}`)
    process.stdout.write(out.join('\n') + '\n')
  }
  if (cellSummaries.some(c => c.servers.some(s => s.errors > 0))) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 2
})
