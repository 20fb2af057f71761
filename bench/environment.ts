// Where a bench ran, for its results file: Node, CPUs, load, git commit. Figures from a busy
// machine mean little, so the load averages before and after go in too, and how fast the machine ran
// a fixed loop before and after (cpuProbeMs): a shared VM's speed is not constant.

import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { round } from './figures.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
/** Where every bench writes its results file (bench/results/). */
export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

export interface BenchEnvironment {
  node: string
  cpus: number
  cpuModel: string | null
  platform: string
  totalMemoryMiB: number
  /** os.loadavg() when the bench started: 1, 5 and 15 minutes. */
  loadAvg: number[]
  commit: string | null
  /** Uncommitted changes to tracked files when the bench ran. */
  dirty: boolean | null
  /** cpuProbeMs() when the bench started. */
  cpuProbeStartMs: number
}

/** What the results file adds when the bench ends. */
export interface EnvironmentAtEnd {
  loadAvgEnd: number[]
  /** cpuProbeMs() once the runs are done. */
  cpuProbeEndMs: number
  /** speedChange's line, or null. */
  speedChange: string | null
}

function git (args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  } catch {
    return null
  }
}

export function benchEnvironment (): BenchEnvironment {
  const commit = git(['rev-parse', 'HEAD'])
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryMiB: Math.round(os.totalmem() / 1048576),
    loadAvg: os.loadavg().map(x => round(x, 2)),
    commit,
    dirty: commit === null ? null : git(['status', '--porcelain', '--untracked-files=no']) !== '',
    cpuProbeStartMs: round(cpuProbeMs(), 2)
  }
}

/** The load averages and the machine's speed once the runs are done (after benchEnvironment at the start). */
export function environmentAtEnd (env: BenchEnvironment): EnvironmentAtEnd {
  const cpuProbeEndMs = round(cpuProbeMs(), 2)
  return {
    loadAvgEnd: os.loadavg().map(x => round(x, 2)),
    cpuProbeEndMs,
    speedChange: speedChange(env.cpuProbeStartMs, cpuProbeEndMs)
  }
}


/** Rounds of cpuProbeMs's loop: a few tens of ms. */
const PROBE_ROUNDS = 20_000_000
/** Where the loop's result goes, so that the JIT cannot drop the loop. */
export let probeSink = 0

/**
 * How long this process takes for a fixed loop of integer work now, ms (the best of three, so that
 * one preemption does not count). A shared VM's speed is not constant: the one these benches were
 * written on ran the same loop 3x slower after a couple of seconds of sustained load (the host's
 * CPU credits, nothing inside the VM shows it). Taken before and after a bench (speedChange), it says
 * whether the machine slowed down while the figures were measured.
 */
export function cpuProbeMs (): number {
  let best = Infinity
  let x = 1
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = performance.now()
    // xorshift32: integer work the JIT cannot fold away.
    for (let i = 0; i < PROBE_ROUNDS; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
    }
    best = Math.min(best, performance.now() - start)
  }
  probeSink = x
  return best
}

/** Slower or faster than this, the machine's speed changed during a bench (speedChange). */
const SPEED_CHANGE_RATIO = 1.3

/**
 * The report's line when the probe took more than 1.3x as long after the bench as before, or less
 * than 1/1.3 (the figures of early and late runs do not compare; interleaved rounds still do); null otherwise.
 */
export function speedChange (beforeMs: number, afterMs: number): string | null {
  const ratio = afterMs / beforeMs
  if (ratio <= SPEED_CHANGE_RATIO && ratio >= 1 / SPEED_CHANGE_RATIO) return null
  const how = ratio > 1 ? `${ratio.toFixed(1)}x slower` : `${(1 / ratio).toFixed(1)}x faster`
  return `note: this machine ran a fixed loop in ${beforeMs.toFixed(0)} ms before the bench and ${afterMs.toFixed(0)} ms after (${how}): ` +
    'its speed changed while the figures were measured, so only the rounds of one cell, interleaved, compare (a shared VM\'s host throttles it, or lends it more)'
}

/** A file name stamp: the ISO date with ':' and '.' replaced. */
export function fileStamp (d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-')
}
