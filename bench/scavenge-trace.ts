// The pauses of a server's young-generation collections (scavenges), from V8's --trace-gc-nvp output
// on the server's stdout: one line per collection, `[pid:isolate:thread] ... pause=MS ... gc=s ...`.
// Only the pool's threads' (Node's thread id above 0), not the main thread's.

import { closeSync, openSync, readSync } from 'node:fs'

/** The node flag that makes V8 print those lines. */
export const SCAVENGE_TRACE_FLAG = '--trace-gc-nvp'

/** `[pid:isolate:thread]`: Node's thread id, 0 for the process's main thread. */
const POOL_THREAD_LINE = /^\[\d+:0x[0-9a-f]+:[1-9]\d*\]/

/**
 * The number after ` FIELD=` in a scavenge line of one of the pool's threads (`pause`,
 * `background.scavenge.parallel`...), or null for any other line.
 */
export function threadScavengeField (line: string, field: string): number | null {
  if (!line.includes(' gc=s ') || !POOL_THREAD_LINE.test(line)) return null
  const at = line.indexOf(` ${field}=`)
  if (at === -1) return null
  const value = Number.parseFloat(line.slice(at + field.length + 2))
  return Number.isFinite(value) ? value : null
}

/** Returns a reader of the pauses (ms) of the threads' scavenges written to `file` since its last call. */
export function scavengePauses (file: string): () => number[] {
  let offset = 0
  let partial = ''
  return () => {
    const chunks: Buffer[] = []
    const fd = openSync(file, 'r')
    try {
      const buf = Buffer.allocUnsafe(1 << 16)
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset)
        if (n === 0) break
        offset += n
        chunks.push(Buffer.from(buf.subarray(0, n)))
      }
    } finally {
      closeSync(fd)
    }
    const lines = (partial + Buffer.concat(chunks).toString('latin1')).split('\n')
    partial = lines.pop() ?? ''
    const pauses: number[] = []
    for (const line of lines) {
      const pauseMs = threadScavengeField(line, 'pause')
      if (pauseMs !== null) pauses.push(pauseMs)
    }
    return pauses
  }
}
