// V8 flags the server sets for its threads. V8's flags belong to the process: set here, before the
// first pool starts a thread, they apply to every isolate created after.
//
// Young-generation collections (scavenges) run on the collecting thread alone when the pools can
// fill the CPUs (their pm.max_children add up to at least the CPU count). V8's default hands part
// of each scavenge to its platform's helper threads and waits for them; with the CPUs busy with the
// pool's other threads, a scavenge then waits for a helper that is not running. The JSON page, 8
// threads on 2 CPUs at 10k req/s (`node bench/threads-cpu.ts --threads 8 --node-flags
// ';--parallel-scavenge' --scavenges`): pauses' p90 1.35 ms against 1.85, their sum 6.9 against 9.6
// ms per 1000 requests, CPU per request the same. With fewer threads than CPUs the helpers have CPUs
// of their own: V8's default stays.
// A command line that names the flag (`node --parallel-scavenge ...`), --single-threaded-gc or
// --single-threaded keeps its own choice (V8 refuses them in NODE_OPTIONS).

import { availableParallelism } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import type { FpmConfig } from '../config/types.ts'

export const SERIAL_SCAVENGES_FLAG = '--no-parallel-scavenge'

/** V8 flag names accept `_` for `-`, and a `no-` prefix. */
const CHOSEN_BY_USER = /^--(?:no-)?(?:parallel-scavenge|single-threaded(?:-gc)?)(?:=|$)/

/**
 * Makes every isolate started from now on collect its young generation by itself when the pools'
 * threads can fill `cpus`, unless `execArgv` chose. Returns the flag it set, or null.
 */
export function useSerialScavenges (config: Pick<FpmConfig, 'pools'>, execArgv: readonly string[] = process.execArgv,
  cpus = availableParallelism()): string | null {
  if (execArgv.some((arg) => CHOSEN_BY_USER.test(arg.replaceAll('_', '-')))) return null
  const threads = config.pools.reduce((sum, pool) => sum + pool.pm.maxChildren, 0)
  if (threads < cpus) return null
  setFlagsFromString(SERIAL_SCAVENGES_FLAG)
  return SERIAL_SCAVENGES_FLAG
}
