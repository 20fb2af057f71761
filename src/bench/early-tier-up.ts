// The load generator's own JIT. V8 optimizes a function with TurboFan once it has run about 3000
// times (--invocation-count-for-turbofan), and the generator's hot functions run once or twice per
// request: at 10k req/s they got there about 1.1 s in, just past the default 1 s warm-up, and the
// dozen TurboFan jobs then took CPU from the server under test and from the generator itself (the
// first half second of the measure: p99 3.45 ms against 1.25 with the jobs inside the warm-up, php-fpm
// with 8 children, medians of 6 runs). A tenth of the threshold gets them done within the first few
// hundred requests of any warm-up. Process-wide, so only for a process that generates load (node-fpm bench,
// bench/run.ts), never a server.

import v8 from 'node:v8'

/** Calls before TurboFan in a load-generating process (V8's default: 3000). */
const GENERATOR_TURBOFAN_CALLS = 300

/** Before the first request of the process. */
export function tierUpEarly (): void {
  v8.setFlagsFromString(`--invocation-count-for-turbofan=${GENERATOR_TURBOFAN_CALLS}`)
}
