// bench/p99-rounds.ts: rounds of results files paired by cell and pooled by settings, the sign test
// checked against exact binomial sums in BigInt, and the command on real files.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { poolRounds, signTestP, summarize, type ResultsFile } from '../../../bench/p99-rounds.ts'

const SCRIPT = fileURLToPath(new URL('../../../bench/p99-rounds.ts', import.meta.url))

/** A results file as bench/run.ts writes it (the fields p99-rounds reads): [node p99, php p99] per round of each scenario. */
function resultsFile (rounds: Record<string, Array<[number, number]>>, opts: Partial<ResultsFile['options']> = {}, workers = 8): ResultsFile {
  const runs: Array<ResultsFile['runs'][number]> = []
  for (const [scenario, pairs] of Object.entries(rounds)) {
    pairs.forEach(([node, php], i) => {
      for (const [server, p99] of [['node-fpm', node], ['php-fpm', php]] as const) {
        runs.push({ workers, scenario, connections: 16, keepConn: true, server, round: i + 1, result: { latency: { p99 } } })
      }
    })
  }
  return { date: '2026-11-22T18:00:00.000Z', options: { vs: 'php-fpm', rate: 10000, accept: 'threads', nodeFlags: [], jitWarmup: 'auto', ...opts }, runs }
}

/** P(split at least as uneven as k of n) at even odds, from exact binomial coefficients. */
function exactSignTest (k: number, n: number): number {
  let c = 1n
  let tail = 0n
  const low = Math.min(k, n - k)
  for (let i = 0; i <= low; i++) {
    tail += c
    c = c * BigInt(n - i) / BigInt(i + 1)
  }
  // 2 * tail / 2^n, in a double without overflow: shift both down to 53 significant bits.
  const shift = Math.max(0, n - 60)
  return Math.min(1, 2 * Number(tail >> BigInt(shift)) / 2 ** (n - shift))
}

describe('p99-rounds', () => {
  test('the sign test is the two-sided binomial tail, also past where 0.5^n underflows', () => {
    for (const [k, n] of [[0, 5], [1, 10], [5, 10], [62, 94], [53, 94], [30, 49], [900, 2000], [1000, 2000]] as const) {
      const got = signTestP(k, n)
      const want = exactSignTest(k, n)
      assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(want, 1e-300) || Math.abs(got - want) < 1e-12, `k=${k} n=${n}: ${got} against ${want}`)
      assert.equal(signTestP(n - k, n), got, 'symmetric')
    }
    assert.equal(signTestP(0, 0), 1)
  })

  test('rounds pair by cell and round, pool across files of the same settings, and split by settings', () => {
    const a = resultsFile({ hello: [[1, 2], [3, 2], [1, 4]], json: [[2, 2]] })
    const b = resultsFile({ hello: [[1, 3], [5, 1]] })
    const longer = resultsFile({ hello: [[9, 1]] }, { jitWarmup: 40 })
    const none = resultsFile({ hello: [[1, 9]] }, { vs: 'none' })
    // A round whose php-fpm run is missing (a server that failed) pairs with nothing.
    const partial = resultsFile({ hello: [[1, 5]] })
    const lone = { ...partial, runs: partial.runs.filter(r => r.server === 'node-fpm') }
    const cells = poolRounds([
      { name: 'a', results: a }, { name: 'b', results: b }, { name: 'longer', results: longer },
      { name: 'none', results: none }, { name: 'lone', results: lone }
    ])
    const labels = cells.map(c => c.label)
    assert.equal(cells.length, 3, labels.join(' | '))
    const hello = cells.find(c => c.label.startsWith('hello') && c.label.endsWith('JIT warm-up 20 s'))
    assert.ok(hello !== undefined, labels.join(' | '))
    assert.deepEqual(hello.runs.map(r => r.file), ['a', 'b'])
    const s = summarize(hello)
    assert.equal(s.rounds, 5)
    assert.equal(s.nodeLower, 3)
    assert.equal(s.nodeHigher, 2)
    // Paired ratios 0.5, 1.5, 0.25, 0.333, 5: median 0.5. Medians of all rounds: node 1, php 2.
    assert.equal(s.medianPairedRatio, 0.5)
    assert.equal(s.medianNodeMs, 1)
    assert.equal(s.medianRefMs, 2)
    // Run a: median node 1 / median php 2; run b: median node 3 / median php 2.
    assert.deepEqual(s.runRatios, [0.5, 1.5])
    assert.ok(cells.some(c => c.label.startsWith('hello') && c.label.endsWith('JIT warm-up 40 s')), 'another warm-up is another cell')
    const json = summarize(cells.find(c => c.label.startsWith('json'))!)
    assert.equal(json.nodeLower + json.nodeHigher, 0, 'an equal round is neither')
    assert.equal(json.signTestP, 1)
    // 'auto' is the warm-up for the cell's workers: 6 s at 2 workers.
    assert.match(poolRounds([{ name: 'w2', results: resultsFile({ hello: [[1, 2]] }, {}, 2) }])[0]!.label, /2 workers, .*JIT warm-up 6 s$/)
  })

  test('the command pools the files it is given; files without a reference server are an error (2)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'p99-rounds-'))
    try {
      const files = [resultsFile({ hello: [[1, 2], [1, 2]] }), resultsFile({ hello: [[3, 2], [1, 2]] })].map((r, i) => {
        const file = path.join(dir, `${i}.json`)
        writeFileSync(file, JSON.stringify(r))
        return file
      })
      const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, ...files])
      assert.match(stdout, /^hello, 8 workers, 16 kept conns, open loop at 10000 req\/s, pm.accept = threads, JIT warm-up 20 s: 2 runs, 4 rounds$/m)
      assert.match(stdout, /node-fpm's p99 lower in 3 of 4 rounds \(75%\), higher in 1 \(sign test p = 0\.625\)/)
      assert.match(stdout, /each run \(median of its rounds\): 0\.5x 1x$/m)
      const none = path.join(dir, 'none.json')
      writeFileSync(none, JSON.stringify(resultsFile({ hello: [[1, 2]] }, { vs: 'none' })))
      await assert.rejects(promisify(execFile)(process.execPath, [SCRIPT, none]), (err: { code?: number, stderr?: string }) => {
        assert.equal(err.code, 2)
        assert.match(err.stderr ?? '', /no round with both node-fpm and a reference server/)
        return true
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
