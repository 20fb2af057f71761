// CPU time of a server's processes (all their threads) over a bench run, from Linux's /proc: how
// many microseconds of CPU each request cost the server, whatever its shape (php-fpm's master and
// children, node-fpm's supervisor and server with its threads). Where the two servers differ most
// is there, not in req/s: at a load both sustain, req/s is the offered rate.

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** A function that returns the CPU time used so far (ms) by a fixed set of processes. */
export type CpuReader = () => number

let ticksPerSecond: number | null = null

function clockTicks (): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** pid, ppid, utime + stime (ticks) from /proc/PID/stat; null when it is gone. */
function readStat (pid: number): { ppid: number, ticks: number } | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return null
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }
}

/**
 * The CPU time of the tree under `rootPid` (its children, theirs...), found again at each reading:
 * a server may still be starting its processes when the bench starts (php-fpm listens before its
 * static children are all forked: a tree taken then missed some of 8). A process that exits between
 * two readings takes its CPU time with it (none do during a run: pm = static). null off Linux.
 */
export function processTreeCpu (rootPid: number): CpuReader | null {
  if (process.platform !== 'linux' || readStat(rootPid) === null) return null
  const msPerTick = 1000 / clockTicks()
  return () => {
    let ticks = 0
    for (const pid of processTree(rootPid)) ticks += readStat(pid)?.ticks ?? 0
    return ticks * msPerTick
  }
}

function processTree (rootPid: number): number[] {
  const parents = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0) continue
    const stat = readStat(pid)
    if (stat !== null) parents.set(pid, stat.ppid)
  }
  const tree = [rootPid]
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid)
  }
  return tree
}
