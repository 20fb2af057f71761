// `node bench/instructions.ts`: the instructions a request costs node-fpm's threads, counted by
// valgrind (callgrind), whatever the machine's speed. A shared VM's speed changes under load (a
// fixed loop 2.5x slower after a few seconds: bench/README.md), so two builds timed one after the
// other can differ by more than what a change to the request path saves; the same build counted
// twice differs by 0.3-3% (how warm the JIT is when the count starts).
//
//   1. starts node-fpm with one static pool of one thread (pm.accept as --accept) serving bench/apps/
//      (bench/node-fpm-process.ts) under valgrind --tool=callgrind --separate-threads=yes, from dist/
//      or --dist DIR (a copy of another build's dist/, to compare), and waits for its ready lines;
//   2. sends --warm requests in an open loop at --rate (unmeasured: the threads' JIT settles; V8
//      keeps compiling for tens of thousands of requests), zeroes the counters when the measure
//      starts, sends --requests more, and dumps the counters;
//   3. prints the instructions per request of each thread of the server that ran any (the request
//      thread, the main thread, V8's compiler and GC helpers) and of all of them.
// User-space instructions only: the kernel's work in a read or a write is not counted.
//
//   node bench/instructions.ts [--script hello] [--accept threads] [--no-keep-conn] [--warm 40000] [--requests 4000] [--rate 300] [--dist dist] [--keep-dumps DIR] [--json]
//
// --keep-dumps copies the counted dump's per-thread files (callgrind.PID.1-TT) to DIR, for
// callgrind_annotate: where the instructions go, by function.
//
// Needs valgrind (`apt-get install valgrind`); a run takes 2-4 minutes. See bench/README.md.

import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Command } from 'commander'
import { acceptMode, parseOptions, wholeNumber } from './cli-options.ts'
import { runLoad } from '../src/bench/load-generator.ts'
import { sleep } from './managed-process.ts'
import { APPS_DIR, startNodeFpm } from './node-fpm-process.ts'

const ROOT = path.resolve(import.meta.dirname, '..')
/** Node under valgrind starts 30-50x slower (two at once: slower still). */
const START_TIMEOUT_MS = 180_000

interface Options {
  script: string
  accept: 'main' | 'threads'
  keepConn: boolean
  warm: number
  requests: number
  rate: number
  dist: string
  keepDumps?: string
  json?: boolean
}

interface ThreadCount {
  /** callgrind's number for the thread (1: the main thread, then in the order they started). */
  thread: number
  instructionsPerRequest: number
}

function parseArgs (): Options | null {
  const program = new Command()
    .exitOverride()
    .name('node bench/instructions.ts')
    .description('instructions per request of node-fpm\'s threads, counted by valgrind (callgrind), after a warm-up')
    .option('--script <name>', 'bench/apps/<name>.mjs', 'hello')
    .option('--accept <mode>', 'pm.accept of the pool: main or threads', acceptMode, 'threads')
    .option('--no-keep-conn', 'a connection per request (nginx\'s default), not 8 kept connections')
    .option('--warm <n>', 'requests before the count (the JIT settles)', wholeNumber('--warm', 0), 40_000)
    .option('--requests <n>', 'requests counted', wholeNumber('--requests', 1), 4_000)
    .option('--rate <r>', 'requests per second (open loop; under valgrind a thread serves about 400)', wholeNumber('--rate', 1), 300)
    .option('--dist <dir>', 'the build to run (a copy of dist/ at the top of the repository)', 'dist')
    .option('--keep-dumps <dir>', 'copy the counted dump\'s files (one per thread) there, for callgrind_annotate')
    .option('--json', 'print the figures as JSON')
  return parseOptions<Options>(program)
}

/** `summary:` of each per-thread file of the counters' first dump (callgrind.PID.1-TT); copied to `keepDir` if given. */
function countsOfDump (dir: string, pid: number, keepDir: string | undefined): Array<{ thread: number, instructions: number }> {
  const counts: Array<{ thread: number, instructions: number }> = []
  if (keepDir !== undefined) mkdirSync(keepDir, { recursive: true })
  for (const name of readdirSync(dir)) {
    const m = new RegExp(`^callgrind\\.${pid}\\.1-(\\d+)$`).exec(name)
    if (m === null) continue
    const summary = /^summary: (\d+)$/m.exec(readFileSync(path.join(dir, name), 'utf8'))
    if (summary !== null) counts.push({ thread: Number(m[1]), instructions: Number(summary[1]) })
    if (keepDir !== undefined) copyFileSync(path.join(dir, name), path.join(keepDir, name))
  }
  return counts.sort((a, b) => a.thread - b.thread)
}

async function main (): Promise<void> {
  const opts = parseArgs()
  if (opts === null) return
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new Error('valgrind is not installed (apt-get install valgrind)')
  }
  const mainJs = path.resolve(ROOT, opts.dist, 'main', 'main.js')
  if (!existsSync(mainJs)) throw new Error(`${mainJs} does not exist: run npm run build (or copy a build's dist/ to ${opts.dist})`)
  const script = path.join(APPS_DIR, `${opts.script}.mjs`)
  if (!existsSync(script)) throw new Error(`${script} does not exist`)

  const h = await startNodeFpm({
    workers: 1,
    noSupervisor: true,
    poolDirectives: `pm.accept = ${opts.accept}`,
    main: mainJs,
    wrapper: (dir) => ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${path.join(dir, 'callgrind.%p')}`],
    startTimeoutMs: START_TIMEOUT_MS
  })
  // valgrind runs Node in its own process: the pid callgrind_control takes.
  const pid = h.pid
  try {
    const say = (line: string): void => { if (opts.json !== true) process.stderr.write(line + '\n') }
    say(`${opts.warm} requests to warm up, then ${opts.requests} counted, at ${opts.rate}/s (about ${Math.ceil((opts.warm + opts.requests) / opts.rate)} s)...`)
    const result = await runLoad({
      address: h.address,
      script,
      root: APPS_DIR,
      connections: 8,
      keepConn: opts.keepConn,
      rate: opts.rate,
      warmup: opts.warm / opts.rate,
      duration: opts.requests / opts.rate,
      timeoutMs: 60_000,
      onMeasure: (edge) => { if (edge === 'start') execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' }) }
    })
    execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' })
    await sleep(1000)
    const failed = Object.values(result.errors).reduce((a, b) => a + b, 0)
    if (failed > 0) say(`note: ${failed} requests failed or were dropped (${JSON.stringify(result.errors)}): the server did not keep up with --rate`)
    const counts = countsOfDump(h.dir, pid, opts.keepDumps).filter((c) => c.instructions >= result.requests)
    const perRequest = (n: number): number => Math.round(n / result.requests)
    const threads: ThreadCount[] = counts.map((c) => ({ thread: c.thread, instructionsPerRequest: perRequest(c.instructions) }))
    const all = perRequest(counts.reduce((a, c) => a + c.instructions, 0))
    const report = { script: opts.script, accept: opts.accept, keepConn: opts.keepConn, dist: opts.dist, warm: opts.warm, requests: result.requests, rate: opts.rate, node: process.version, instructionsPerRequest: all, threads }
    if (opts.json === true) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    } else {
      process.stdout.write(`${opts.script}, pm.accept = ${opts.accept}${opts.keepConn ? '' : ', a connection per request'}, ${opts.dist}: ${result.requests} requests counted\n`)
      for (const t of [...threads].sort((a, b) => b.instructionsPerRequest - a.instructionsPerRequest)) {
        process.stdout.write(`  thread ${String(t.thread).padStart(2)}  ${t.instructionsPerRequest.toLocaleString('en-US').padStart(9)} instructions per request\n`)
      }
      process.stdout.write(`  all        ${all.toLocaleString('en-US').padStart(9)}\n`)
    }
  } finally {
    await h.stop()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/instructions.ts: ${(err as Error).message}\n`)
  process.exitCode = 1
})

