// `node bench/threads-cpu.ts`: what a request costs node-fpm in CPU and wakeups with different
// pool sizes (pm.accept modes, node flags) at the same offered load, measured so that the VM's drift cancels out.
// A shared VM's speed changes by tens of percent within minutes, more than the differences sought:
// so every server is up at once, and short measures alternate between them.
//
//   1. starts one node-fpm per variant (--no-supervisor, pm = static with --threads threads, pm.accept
//      as --accept, node flags as --node-flags: every combination), all at once, serving bench/apps/<--script>.mjs;
//   2. loads each for --warm seconds at --rate (unmeasured: the threads' JIT settles);
//   3. --rounds times, each variant in turn: --duration seconds at --rate over 16 kept connections,
//      reading from /proc the server's CPU time (all its threads) and its threads' voluntary context
//      switches (how often a thread went to sleep: a wakeup each) before and after;
//   4. prints per round and the medians: CPU µs and wakeups per request, p99, and in how many rounds
//      each variant cost less CPU than the first;
//   with --scavenges, the servers also run with V8's --trace-gc-nvp (bench/scavenge-trace.ts) and
//      each measure gives its threads' young-generation collections: how many per 1000 requests,
//      their pauses' p90, p99 and max, and their sum per 1000 requests.
//
//   node bench/threads-cpu.ts [--threads 2,8] [--node-flags 'FLAGS;FLAGS'] [--script json] [--rate 10000]
//                             [--warm 15] [--duration 2] [--rounds 8] [--accept threads|main|main,threads]
//                             [--scavenges] [--json]
//
// Linux only (/proc). See bench/README.md.

import { readdirSync, readFileSync } from 'node:fs'
import { Command } from 'commander'
import { acceptMode, nodeFlagWords, parseOptions, wholeNumber, wholeNumberList } from './cli-options.ts'
import { median, percentile, round } from './figures.ts'
import { runLoad } from '../src/bench/load-generator.ts'
import { tierUpEarly } from '../src/bench/early-tier-up.ts'
import { APPS_DIR, startNodeFpm, type NodeFpmHandle } from './node-fpm-process.ts'
import { processTreeCpu, type CpuReader } from './process-cpu.ts'
import { SCAVENGE_TRACE_FLAG, scavengePauses } from './scavenge-trace.ts'

interface Options {
  threads: number[]
  nodeFlags: string[][]
  script: string
  rate: number
  warm: number
  duration: number
  rounds: number
  accept: Array<'main' | 'threads'>
  scavenges?: boolean
  json?: boolean
}

/** A measure's young-generation collections (--scavenges). */
interface Scavenges { per1kRequests: number, p90Ms: number, p99Ms: number, maxMs: number, msPer1kRequests: number }

interface Variant {
  readonly name: string
  readonly threads: number
  readonly accept: 'main' | 'threads'
  readonly nodeFlags: readonly string[]
  handle: NodeFpmHandle | null
  cpu: CpuReader | null
  scavenges: (() => number[]) | null
  readonly rounds: Array<{ cpuUsPerRequest: number, wakeupsPerRequest: number, p99Ms: number, rps: number, scavenges?: Scavenges }>
}

function parseArgs (): Options | null {
  const program = new Command()
    .exitOverride()
    .name('node bench/threads-cpu.ts')
    .description('CPU and wakeups per request of node-fpm with different pool sizes, pm.accept modes or node flags, at the same offered load, in alternating measures')
    .option('--threads <list>', 'pm.max_children of each server, comma-separated', wholeNumberList('--threads', 1), [2, 8])
    .option('--node-flags <list>', "node options of the servers, ';'-separated variants (each applied to every --threads); '' for none", (v: string) => v.split(';').map(nodeFlagWords), [[]])
    .option('--script <name>', 'bench/apps/<name>.mjs', 'json')
    .option('--rate <r>', 'requests per second (open loop, 16 kept connections)', wholeNumber('--rate', 1), 10_000)
    .option('--warm <s>', 'seconds of load on each server before the measures', wholeNumber('--warm', 0), 15)
    .option('--duration <s>', 'seconds per measure', wholeNumber('--duration', 1), 2)
    .option('--rounds <n>', 'measures of each server, alternating', wholeNumber('--rounds', 1), 8)
    .option('--accept <list>', 'pm.accept of the pools: main, threads or both (main,threads)', (v: string) => [...new Set(v.split(',').map(acceptMode))], ['threads'])
    .option('--scavenges', "also the threads' young-generation collections (V8's --trace-gc-nvp): count, pauses")
    .option('--json', 'print the figures as JSON')
  return parseOptions<Options>(program)
}

/** Voluntary context switches of all the threads of `pid` so far: each one a thread that went to sleep. */
function voluntarySwitches (pid: number): number {
  let n = 0
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'latin1'))
      n += Number(m?.[1] ?? 0)
    } catch { /* a thread that just ended */ }
  }
  return n
}

function scavengeFigures (pausesMs: readonly number[], requests: number): Scavenges {
  const per1k = 1000 / Math.max(1, requests)
  return {
    per1kRequests: round(pausesMs.length * per1k, 2),
    p90Ms: percentile(pausesMs, 90),
    p99Ms: percentile(pausesMs, 99),
    maxMs: percentile(pausesMs, 100),
    msPer1kRequests: round(pausesMs.reduce((a, b) => a + b, 0) * per1k, 2)
  }
}

function medianScavenges (rounds: readonly Scavenges[]): Scavenges {
  const m = (pick: (s: Scavenges) => number): number => round(median(rounds.map(pick)), 2)
  return { per1kRequests: m(s => s.per1kRequests), p90Ms: m(s => s.p90Ms), p99Ms: m(s => s.p99Ms), maxMs: m(s => s.maxMs), msPer1kRequests: m(s => s.msPer1kRequests) }
}

function scavengeText (s: Scavenges | undefined): string {
  return s === undefined ? '' : `; scavenges ${s.per1kRequests}/1000 requests, pauses p90 ${s.p90Ms} p99 ${s.p99Ms} max ${s.maxMs} ms, ${s.msPer1kRequests} ms/1000 requests`
}

async function main (): Promise<void> {
  const opts = parseArgs()
  if (opts === null) return
  if (process.platform !== 'linux') throw new Error('Linux only: the figures come from /proc')
  tierUpEarly()
  const variants: Variant[] = opts.nodeFlags.flatMap(flags => opts.accept.flatMap(accept => opts.threads.map(threads => ({
    name: `${threads} threads${opts.accept.length > 1 ? `, pm.accept = ${accept}` : ''}${flags.length > 0 ? ` ${flags.join(' ')}` : ''}`,
    threads,
    accept,
    nodeFlags: flags,
    handle: null,
    cpu: null,
    scavenges: null,
    rounds: []
  }))))
  const script = `${APPS_DIR}/${opts.script}.mjs`
  const load = async (v: Variant, seconds: number): Promise<{ requests: number, p99Ms: number, rps: number }> => {
    const r = await runLoad({ address: (v.handle as NodeFpmHandle).address, script, root: APPS_DIR, connections: 16, duration: seconds, warmup: 0, rate: opts.rate, check: false })
    return { requests: r.requests, p99Ms: r.latency.p99, rps: r.rps }
  }
  try {
    await Promise.all(variants.map(async (v) => {
      const nodeFlags = opts.scavenges === true ? [...v.nodeFlags, SCAVENGE_TRACE_FLAG] : v.nodeFlags
      v.handle = await startNodeFpm({ workers: v.threads, noSupervisor: true, poolDirectives: `pm.accept = ${v.accept}`, nodeFlags })
      v.cpu = processTreeCpu(v.handle.pid)
      if (opts.scavenges === true) v.scavenges = scavengePauses(v.handle.outLog)
    }))
    for (const v of variants) if (opts.warm > 0) await load(v, opts.warm)
    for (let measure = 1; measure <= opts.rounds; measure++) {
      for (const v of variants) {
        const pid = (v.handle as NodeFpmHandle).pid
        const cpu0 = (v.cpu as CpuReader)()
        const switches0 = voluntarySwitches(pid)
        v.scavenges?.() // drops this server's collections since the last read: the warm-up, the others' measures
        const r = await load(v, opts.duration)
        const cpuMs = (v.cpu as CpuReader)() - cpu0
        const wakeups = voluntarySwitches(pid) - switches0
        const pauses = v.scavenges?.()
        const row = {
          cpuUsPerRequest: round(cpuMs * 1000 / r.requests, 1),
          wakeupsPerRequest: round(wakeups / r.requests, 2),
          p99Ms: r.p99Ms,
          rps: Math.round(r.rps),
          ...(pauses === undefined ? {} : { scavenges: scavengeFigures(pauses, r.requests) })
        }
        v.rounds.push(row)
        if (opts.json !== true) process.stdout.write(`round ${measure} ${v.name}: ${row.rps} req/s, CPU ${row.cpuUsPerRequest} µs/request, ${row.wakeupsPerRequest} wakeups/request, p99 ${row.p99Ms} ms${scavengeText(row.scavenges)}\n`)
      }
    }
  } finally {
    await Promise.all(variants.map(async (v) => { await v.handle?.stop() }))
  }
  const first = variants[0] as Variant
  const summary = variants.map(v => ({
    variant: v.name,
    threads: v.threads,
    accept: v.accept,
    nodeFlags: v.nodeFlags,
    cpuUsPerRequest: round(median(v.rounds.map(r => r.cpuUsPerRequest)), 1),
    wakeupsPerRequest: round(median(v.rounds.map(r => r.wakeupsPerRequest)), 2),
    p99Ms: round(median(v.rounds.map(r => r.p99Ms)), 3),
    scavenges: v.rounds[0]?.scavenges === undefined ? undefined : medianScavenges(v.rounds.map(r => r.scavenges as Scavenges)),
    cheaperThanFirst: v === first ? null : v.rounds.filter((r, i) => r.cpuUsPerRequest < (first.rounds[i] as { cpuUsPerRequest: number }).cpuUsPerRequest).length,
    rounds: v.rounds
  }))
  if (opts.json === true) {
    process.stdout.write(JSON.stringify({ options: opts, node: process.version, summary }, null, 2) + '\n')
    return
  }
  process.stdout.write(`\n${opts.script}, ${opts.rate} req/s, 16 kept connections, pm.accept = ${opts.accept.join(' / ')}, ${opts.rounds} rounds of ${opts.duration} s after ${opts.warm} s of load each (medians):\n`)
  for (const s of summary) {
    const vs = s.cheaperThanFirst === null ? '' : `, less CPU than ${first.name} in ${s.cheaperThanFirst} of ${opts.rounds} rounds`
    process.stdout.write(`  ${s.variant}: CPU ${s.cpuUsPerRequest} µs/request, ${s.wakeupsPerRequest} wakeups/request, p99 ${s.p99Ms} ms${scavengeText(s.scavenges)}${vs}\n`)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/threads-cpu.ts: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 2
})
