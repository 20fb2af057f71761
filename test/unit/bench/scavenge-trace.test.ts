// bench/scavenge-trace.ts reads the pauses of the pool threads' scavenges from V8's --trace-gc-nvp
// lines as a server writes them: a real Node child with a worker thread writes the file, so the
// line format is V8's own; then lines appended in pieces (a line cut in two) are read once each.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SCAVENGE_TRACE_FLAG, scavengePauses } from '../../../bench/scavenge-trace.ts'
import { percentile } from '../../../bench/figures.ts'

const CHURN = 'let a = []; for (let i = 0; i < 3e5; i++) { a.push({ i, s: "x" + i }); if (a.length > 5e4) a = [] }'

describe('scavengePauses', () => {
  it("reads a worker thread's scavenges from V8's own output, not the main thread's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'node-fpm-scavenge-'))
    try {
      const file = join(dir, 'out.log')
      // The main thread churns too: its scavenges must not count.
      const script = `${CHURN}; const { Worker } = require('node:worker_threads'); new Worker(${JSON.stringify(CHURN)}, { eval: true })`
      writeFileSync(file, execFileSync(process.execPath, [SCAVENGE_TRACE_FLAG, '-e', script]))
      const text = readFileSync(file, 'latin1')
      const mainLines = text.split('\n').filter(l => / gc=s /.test(l) && /^\[\d+:0x[0-9a-f]+:0\]/.test(l)).length
      const threadLines = text.split('\n').filter(l => / gc=s /.test(l) && /^\[\d+:0x[0-9a-f]+:[1-9]\d*\]/.test(l)).length
      assert.ok(mainLines > 0 && threadLines > 0, `main ${mainLines}, thread ${threadLines}`)
      const read = scavengePauses(file)
      const pauses = read()
      assert.equal(pauses.length, threadLines)
      assert.ok(pauses.every(ms => Number.isFinite(ms) && ms >= 0), pauses.join(' '))
      assert.deepEqual(read(), [])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('reads a line cut in two once it is whole, and each line once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'node-fpm-scavenge-'))
    try {
      const file = join(dir, 'out.log')
      const line = (thread: number, pauseMs: string, gc: string): string =>
        `[77:0x5f00a0:${thread}]     1234 ms: pause=${pauseMs} mutator=3.1 gc=${gc} reduce_memory=0 time_to_safepoint=0.00\n`
      writeFileSync(file, line(1, '0.4', 's') + line(0, '9.0', 's') + line(2, '12.5', 'mc'))
      const read = scavengePauses(file)
      assert.deepEqual(read(), [0.4])
      const next = line(3, '1.5', 's')
      appendFileSync(file, next.slice(0, 30))
      assert.deepEqual(read(), [])
      appendFileSync(file, next.slice(30) + line(12, '0.7', 's'))
      assert.deepEqual(read(), [1.5, 0.7])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('percentile', () => {
  it('nearest rank', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]
    assert.equal(percentile(xs, 90), 9)
    assert.equal(percentile(xs, 99), 10)
    assert.equal(percentile(xs, 100), 10)
    assert.equal(percentile(xs, 50), 5)
    assert.equal(percentile(xs, 0), 1)
    assert.equal(percentile([], 90), 0)
  })
})
