// How long bench/run.ts loads a server, unmeasured, before its first run of a scenario (--jit-warmup).
// Each of node-fpm's threads has its own V8 JIT, which compiles its hot code after thousands of
// requests of its own: the more threads share a load, the longer each takes. Six seconds settle 2
// threads; 8 threads at 10k req/s still had their worst p99 rounds first after 6 s and none after
// 20 s (2026-11-22, bench/README.md). php-fpm gets the same warm-up.

/** Seconds per worker, and the least (2 workers and fewer). */
const SECONDS_PER_WORKER = 2.5
const LEAST_S = 6

/** The default --jit-warmup for servers of `workers` workers: 6 s up to 2, 2.5 s per worker above (8: 20 s). */
function autoJitWarmupS (workers: number): number {
  return Math.max(LEAST_S, SECONDS_PER_WORKER * workers)
}

/** A results file's `options.jitWarmup` (a number, or 'auto' when not given) for servers of `workers` workers. */
export function jitWarmupS (option: number | 'auto', workers: number): number {
  return option === 'auto' ? autoJitWarmupS(workers) : option
}
