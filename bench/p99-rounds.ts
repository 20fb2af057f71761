// `node bench/p99-rounds.ts RESULTS.json...`: node-fpm's p99 against php-fpm's, pooled over the rounds
// of several `npm run bench` results files (bench/results/*.json, written by bench/run.ts).
//
// On a shared VM one run's p99 ratio follows the VM's state more than the servers: the same command
// (8 workers, 10k req/s, 2 vCPUs) gave 0.36x to 3.35x from one run to the next. A round runs the two
// servers one after the other, seconds apart, so each round is a pair measured on nearly the same
// machine. Over many runs: in how many pairs node-fpm's p99 was the lower (with a two-sided sign
// test: how likely so uneven a split is if neither server is faster), the median of the paired
// ratios, and the medians of all rounds, tell what no single run can.
// Rounds pool only with rounds of the same cell and settings: scenario, workers, connections,
// keep-conn, rate, pm.accept, node flags and JIT warm-up.
//
//   node bench/p99-rounds.ts bench/results/A.json bench/results/B.json ... [--json]
//
// See bench/README.md.

import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { parseOptions } from './cli-options.ts'
import { median, round } from './figures.ts'
import { jitWarmupS } from './jit-warmup.ts'

/** What this reads of a results file (bench/run.ts writes more). */
export interface ResultsFile {
  readonly date: string
  readonly options: {
    readonly vs: string
    readonly rate: number | null
    readonly accept?: string
    readonly nodeFlags?: readonly string[]
    readonly jitWarmup: number | 'auto'
  }
  readonly runs: ReadonlyArray<{
    readonly workers: number
    readonly scenario: string
    readonly connections: number
    readonly keepConn: boolean
    readonly server: string
    readonly round: number
    readonly result: { readonly latency: { readonly p99: number } }
  }>
}

/** One round of a cell: both servers' p99 (ms). */
export interface RoundPair { readonly nodeMs: number, readonly refMs: number }

/** A cell and its settings, pooled over files. */
export interface PooledCell {
  readonly label: string
  readonly reference: string
  /** Per file (in the order given), the cell's rounds that have both servers. */
  readonly runs: Array<{ readonly file: string, readonly rounds: RoundPair[] }>
}

export interface PooledSummary {
  readonly label: string
  readonly reference: string
  readonly runs: number
  readonly rounds: number
  /** Rounds where node-fpm's p99 was lower, and where it was higher (equal ones are neither). */
  readonly nodeLower: number
  readonly nodeHigher: number
  /** Two-sided exact sign test over the unequal rounds. */
  readonly signTestP: number
  readonly medianPairedRatio: number
  readonly medianNodeMs: number
  readonly medianRefMs: number
  /** Each run's ratio as bench/run.ts prints it: the median of its node-fpm rounds over the median of its reference rounds. */
  readonly runRatios: number[]
}

/** Two-sided exact binomial sign test: the chance of a split at least as uneven as `k` of `n` at even odds. */
export function signTestP (k: number, n: number): number {
  if (n === 0) return 1
  const low = Math.min(k, n - k)
  // P(X <= low) for X ~ Binomial(n, 1/2), summed in logs (0.5^n underflows past n = 1074).
  let logPmf = -n * Math.LN2
  let tail = Math.exp(logPmf)
  for (let i = 0; i < low; i++) {
    logPmf += Math.log((n - i) / (i + 1))
    tail += Math.exp(logPmf)
  }
  return Math.min(1, 2 * tail)
}

function cellLabel (f: ResultsFile, run: ResultsFile['runs'][number]): string {
  const o = f.options
  const flags = o.nodeFlags !== undefined && o.nodeFlags.length > 0 ? `, node ${o.nodeFlags.join(' ')}` : ''
  return `${run.scenario}, ${run.workers} workers, ${run.connections} ${run.keepConn ? 'kept conns' : 'conns, a new one per request'}, ` +
    `${o.rate !== null ? `open loop at ${o.rate} req/s` : 'closed loop'}, pm.accept = ${o.accept ?? 'main'}${flags}, ` +
    `JIT warm-up ${jitWarmupS(o.jitWarmup, run.workers)} s`
}

/** Pairs each file's rounds by cell, and pools the cells of equal settings across files. */
export function poolRounds (files: ReadonlyArray<{ name: string, results: ResultsFile }>): PooledCell[] {
  const cells = new Map<string, PooledCell>()
  for (const { name, results } of files) {
    const ref = results.options.vs
    if (ref === 'none') continue
    const byRound = new Map<string, { label: string, node?: number, ref?: number }>()
    for (const run of results.runs) {
      if (run.server !== 'node-fpm' && run.server !== ref) continue
      const label = cellLabel(results, run)
      const key = `${label}\u0000${run.round}`
      const entry = byRound.get(key) ?? { label }
      if (run.server === 'node-fpm') entry.node = run.result.latency.p99
      else entry.ref = run.result.latency.p99
      byRound.set(key, entry)
    }
    const thisFile = new Map<string, RoundPair[]>()
    for (const { label, node, ref: refMs } of byRound.values()) {
      if (node === undefined || refMs === undefined) continue
      const pairs = thisFile.get(label) ?? []
      pairs.push({ nodeMs: node, refMs })
      thisFile.set(label, pairs)
    }
    for (const [label, rounds] of thisFile) {
      const key = `${label}\u0000${ref}`
      const cell = cells.get(key) ?? { label, reference: ref, runs: [] }
      cell.runs.push({ file: name, rounds })
      cells.set(key, cell)
    }
  }
  return [...cells.values()]
}

export function summarize (cell: PooledCell): PooledSummary {
  const all = cell.runs.flatMap(r => r.rounds)
  const nodeLower = all.filter(p => p.nodeMs < p.refMs).length
  const nodeHigher = all.filter(p => p.nodeMs > p.refMs).length
  return {
    label: cell.label,
    reference: cell.reference,
    runs: cell.runs.length,
    rounds: all.length,
    nodeLower,
    nodeHigher,
    signTestP: signTestP(nodeLower, nodeLower + nodeHigher),
    medianPairedRatio: median(all.map(p => p.nodeMs / p.refMs)),
    medianNodeMs: median(all.map(p => p.nodeMs)),
    medianRefMs: median(all.map(p => p.refMs)),
    runRatios: cell.runs.map(r => median(r.rounds.map(p => p.nodeMs)) / median(r.rounds.map(p => p.refMs)))
  }
}

export function formatSummary (s: PooledSummary): string {
  const pct = s.rounds > 0 ? Math.round(100 * s.nodeLower / s.rounds) : 0
  return [
    `${s.label}: ${s.runs} run${s.runs === 1 ? '' : 's'}, ${s.rounds} rounds`,
    `  node-fpm's p99 lower in ${s.nodeLower} of ${s.rounds} rounds (${pct}%), higher in ${s.nodeHigher} ` +
      `(sign test p = ${s.signTestP < 0.001 ? s.signTestP.toExponential(1) : round(s.signTestP, 3)}); median of the paired ratios ${round(s.medianPairedRatio, 2)}x`,
    `  median round p99: node-fpm ${round(s.medianNodeMs, 2)} ms, ${s.reference} ${round(s.medianRefMs, 2)} ms (${round(s.medianNodeMs / s.medianRefMs, 2)}x)`,
    `  each run (median of its rounds): ${s.runRatios.map(r => `${round(r, 2)}x`).join(' ')}`
  ].join('\n')
}

function main (): void {
  const program = new Command('p99-rounds')
    .description("node-fpm's p99 against php-fpm's, pooled over the rounds of bench/run.ts results files")
    .argument('<files...>', 'bench/results/*.json files of runs with a reference server')
    .option('--json', 'print the summaries as JSON')
    .showHelpAfterError()
    .exitOverride()
  const opts = parseOptions<{ json?: boolean }>(program)
  if (opts === null) return
  const files = program.args.map(name => ({ name, results: JSON.parse(readFileSync(name, 'utf8')) as ResultsFile }))
  const summaries = poolRounds(files).map(summarize)
  if (summaries.length === 0) {
    process.stderr.write('p99-rounds: no round with both node-fpm and a reference server in these files\n')
    process.exitCode = 2
    return
  }
  process.stdout.write(opts.json === true ? JSON.stringify(summaries, null, 2) + '\n' : summaries.map(formatSummary).join('\n\n') + '\n')
}

if (import.meta.main) {
  try {
    main()
  } catch (err) {
    process.stderr.write(`p99-rounds: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 2
  }
}
