// `node-fpm bench` (src/cli/bench-command.ts over src/bench/load-generator.ts) run as the real
// command, a child process, against a real node-fpm serving bench/apps/ (test/helpers/fpm-tester.ts)
// and against Debian's php-fpm when it is installed (bench/php-fpm.ts). Runs are short (about 1 s):
// the figures are checked for shape and rough size, not for speed.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CLI, NODE, REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { findPhpFpm, startPhpFpm } from '../../bench/php-fpm.ts'
import type { PhpFpmHandle } from '../../bench/php-fpm.ts'
import type { LoadResult } from '../../src/bench/load-generator.ts'

const BENCH_APPS = path.join(REPO, 'bench/apps')
const noPhp = findPhpFpm() === null

const CONFIG = `[global]
log_level = notice

[bench]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
`

interface Outcome { code: number | null, stdout: string, stderr: string }

async function bench (args: string[], nodeFlags: string[] = []): Promise<Outcome> {
  const child = spawn(NODE, [...nodeFlags, CLI, 'bench', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

function parse (o: Outcome): LoadResult {
  try {
    return JSON.parse(o.stdout) as LoadResult
  } catch {
    throw new Error(`not JSON (exit ${o.code}):\n${o.stdout}\n${o.stderr}`)
  }
}

describe('node-fpm bench against node-fpm', () => {
  let fpm: FpmHandle
  let addr: string

  before(async () => {
    fpm = await startFpm(CONFIG, { root: BENCH_APPS })
    addr = `127.0.0.1:${fpm.port}`
  })
  after(async () => { await fpm?.stop() })

  test('closed loop, --json: the result has every figure, no errors', async () => {
    const o = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '4', '-d', '1', '--warmup', '0.2', '--expect-body', 'Hello, World!', '--json'])
    assert.equal(o.code, 0, o.stderr)
    const r = parse(o)
    assert.equal(r.mode, 'closed')
    assert.equal(r.rate, null)
    assert.equal(r.lateness, null, 'a closed loop has no schedule to be late on')
    assert.equal(r.connections, 4)
    assert.equal(r.keepConn, true)
    assert.equal(r.method, 'GET')
    assert.equal(r.script, path.join(BENCH_APPS, 'hello.mjs'))
    assert.ok(r.duration >= 0.99 && r.duration < 1.5, `duration ${r.duration}`)
    assert.ok(r.requests > 50, `only ${r.requests} requests`)
    assert.ok(r.rps > 0)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    for (const k of ['connect', 'protocol', 'status', 'body', 'timeout', 'dropped'] as const) assert.equal(r.errors[k], 0)
    const l = r.latency
    assert.ok(l.min > 0 && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l))
    assert.ok(l.percentiles.length > 3 && l.percentiles.at(-1)![0] === 100)
    assert.equal(r.connectionsServed, 4)
    assert.ok(r.stdoutBytes > r.requests * 13 && r.bytesReceived > r.stdoutBytes && r.bytesSent > r.requests * 100)
    assert.ok(r.clientCpu > 0)
  })

  test('the human report: req/s, percentiles, errors by kind, bytes', async () => {
    const o = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '2', '-d', '300ms', '--warmup', '0'])
    assert.equal(o.code, 0, o.stderr)
    assert.match(o.stdout, /req\/s +\d+\.\d/)
    assert.match(o.stdout, /p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms +p99\.9 [\d.]+ ms +max [\d.]+ ms/)
    assert.match(o.stdout, /errors +0 +\(connect 0, protocol 0, status 0, body 0, timeout 0\)/)
    assert.match(o.stdout, /received +[\d.]+ [kMG]?B/)
    assert.equal(o.stderr, '', 'no progress line when stderr is not a terminal')
  })

  test('--expect-body: a wrong body fails the check request (exit 2), and counts as body errors with --no-check (exit 1)', async () => {
    const checked = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-d', '1', '--expect-body', 'Goodbye'])
    assert.equal(checked.code, 2)
    assert.match(checked.stderr, /check request failed: body of 13 bytes differs from the expected 7 bytes/)

    const o = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '2', '-d', '0.5', '--warmup', '0', '--expect-body', 'Goodbye', '--no-check', '--json'])
    assert.equal(o.code, 1, o.stderr)
    const r = parse(o)
    assert.ok(r.requests > 0)
    assert.equal(r.errors.body, r.requests)
    assert.equal(r.errors.total, r.requests)
    assert.match(r.errorSamples.body ?? '', /differs from the expected 7 bytes \(got 13 bytes\)/)
  })

  test('--rate 200 -d 1: about 200 req/s, latency from the schedule', async () => {
    const o = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '4', '--rate', '200', '-d', '1', '--warmup', '0.2', '--json'])
    assert.equal(o.code, 0, o.stderr)
    const r = parse(o)
    assert.equal(r.mode, 'open')
    assert.equal(r.rate, 200)
    assert.equal(r.maxOutstanding, 1000)
    assert.ok(r.rps >= 150 && r.rps <= 250, `${r.rps} req/s`)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    const late = r.lateness
    assert.ok(late !== null && late.p50 > 0 && late.p50 <= late.p99 && late.p99 <= late.max, JSON.stringify(late))

    const human = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '2', '--rate', '200', '-d', '0.3', '--warmup', '0'])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /lateness +p50 [\d.]+ ms +p99 [\d.]+ ms +max [\d.]+ ms/)
  })

  test('the generator has V8 optimize its own hot code within its first 3000 requests, inside any warm-up', async () => {
    // --trace-opt prints each function V8 marks for optimization, on the thread that runs it (the compile
    // comes later on another thread, maybe after the process ended). With the generator's threshold the
    // request path's functions are marked after 700-900 requests, later on a busy machine (Maglev's compile
    // comes first); at V8's default (3000 calls) none of these is after 3000 requests (checked): at 10k
    // req/s they were marked about 1.1 s in, past the default 1 s warm-up (src/bench/early-tier-up.ts).
    // No cap on outstanding requests: a stall of the loaded machine must not drop the requests that count.
    const o = await bench([addr, '/hello.mjs', '--root', 'bench/apps', '-c', '2', '--rate', '2000', '-d', '1.5', '--warmup', '0', '--max-outstanding', '100000'], ['--trace-opt'])
    assert.equal(o.code, 0, o.stderr)
    // at most the 3000 scheduled (and a few sent late); at least enough for the marks (a stall of half a
    // second here left ~2000 answered within the 1.5 s)
    const requests = Number(/requests +(\d+)/.exec(o.stdout)?.[1])
    assert.ok(requests >= 1200 && requests <= 3300, `${requests} requests`)
    // A function inlined into an optimized caller stops counting its own calls, so which ones get marked
    // varies a little from run to run: all 8 in 4 runs here, none of them at V8's default.
    const hot = ['#send', '#onStdout', '#onEnd', '#scanHead', '#step', 'catchUp', 'onRecord', 'readHeader']
    const marked = hot.filter(fn => new RegExp(`marking .*<JSFunction ${fn} .*for optimization to TURBOFAN`).test(o.stdout))
    assert.ok(marked.length >= 6, `only ${marked.join(' ')} of ${hot.join(' ')} marked for TurboFan`)
  })

  test('--rate beyond what the server does: the cap on outstanding requests drops and counts them', async () => {
    // sleep.mjs waits 10 ms on 2 threads: at most about 200 req/s.
    const o = await bench([addr, '/sleep.mjs', '--root', 'bench/apps', '-c', '4', '--rate', '1000', '--max-outstanding', '8', '-d', '0.5', '--warmup', '0', '--json'])
    assert.equal(o.code, 1, o.stderr)
    const r = parse(o)
    assert.ok(r.errors.dropped > 100, `${r.errors.dropped} dropped`)
    assert.equal(r.errors.total, r.errors.dropped, JSON.stringify(r.errorSamples))
    assert.ok(r.rps > 50 && r.rps < 260, `${r.rps} req/s`)
    assert.ok(r.latency.p50 >= 10, 'the wait in the queue counts')
  })

  test('--no-keep-conn, and a POST body echoed (--data-size, --expect-echo)', async () => {
    const o = await bench([addr, '/echo.mjs', '--root', 'bench/apps', '-c', '2', '-d', '0.5', '--warmup', '0', '--no-keep-conn', '--data-size', '64K', '--expect-echo', '--json'])
    assert.equal(o.code, 0, o.stderr)
    const r = parse(o)
    assert.equal(r.keepConn, false)
    assert.equal(r.method, 'POST')
    assert.equal(r.requestBodyBytes, 65536)
    assert.ok(r.requests > 5, `only ${r.requests} requests`)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    assert.ok(r.stdoutBytes >= r.requests * 65536)
  })

  test('bad options are usage errors (64)', async () => {
    const o = await bench([addr, '-d', '0'])
    assert.equal(o.code, 64)
    assert.match(o.stderr, /--duration/)
  })
})

describe('node-fpm bench against php-fpm', { skip: noPhp ? 'php-fpm is not installed' : false }, () => {
  let php: PhpFpmHandle
  let tmp: string

  before(async () => {
    php = await startPhpFpm({ workers: 2 })
    tmp = mkdtempSync(path.join(os.tmpdir(), 'node-fpm-bench-test-'))
  })
  after(async () => {
    await php?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('hello.php, keep-conn, as many connections as workers', async () => {
    const o = await bench([php.address, '/hello.php', '--root', php.scriptDir, '-c', '2', '-d', '0.5', '--warmup', '0.1', '--expect-body', 'Hello, World!', '--json'])
    assert.equal(o.code, 0, o.stderr)
    const r = parse(o)
    assert.ok(r.requests > 50)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    assert.equal(r.connectionsServed, 2)
  })

  test('echo.php, a new connection per request, --data @file echoed', async () => {
    const file = path.join(tmp, 'body.bin')
    const body = Buffer.alloc(200_000)
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >>> 8)) & 0xff
    writeFileSync(file, body)
    const o = await bench([php.address, '/echo.php', '--root', php.scriptDir, '-c', '2', '-d', '0.5', '--warmup', '0', '--no-keep-conn', '--data', `@${file}`, '--expect-echo', '--json'])
    assert.equal(o.code, 0, o.stderr)
    const r = parse(o)
    assert.equal(r.requestBodyBytes, 200_000)
    assert.ok(r.requests > 5)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
  })
})
