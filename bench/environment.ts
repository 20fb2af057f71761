// Where a bench ran, for its results file: Node, CPUs, load, git commit. Figures from a busy
// machine mean little, so the load averages before and after go in too.

import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

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
    loadAvg: os.loadavg().map(x => Math.round(x * 100) / 100),
    commit,
    dirty: commit === null ? null : git(['status', '--porcelain', '--untracked-files=no']) !== ''
  }
}

/** A file name stamp: the ISO date with ':' and '.' replaced. */
export function fileStamp (d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-')
}
