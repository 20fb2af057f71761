// bench/environment.ts: the machine's speed before and after a bench (a fixed loop, timed), and the
// note the reports print when it changed by more than a third.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { benchEnvironment, cpuProbeMs, environmentAtEnd, speedChange } from '../../../bench/environment.ts'

describe('the machine speed probe', () => {
  test('times the loop in milliseconds', () => {
    const ms = cpuProbeMs()
    assert.ok(Number.isFinite(ms) && ms > 0 && ms < 10_000, `${ms} ms`)
  })

  test('a change within a third is no change; beyond, the note says which way and how much', () => {
    assert.equal(speedChange(20, 20), null)
    assert.equal(speedChange(20, 26), null)
    assert.equal(speedChange(20, 15.4), null)
    const slower = speedChange(20, 61)
    assert.match(slower ?? '', /20 ms before the bench and 61 ms after \(3\.0x slower\)/)
    const faster = speedChange(60, 20)
    assert.match(faster ?? '', /60 ms before the bench and 20 ms after \(3\.0x faster\)/)
  })

  test('the results file gets the probe at both ends, and the note when they differ', () => {
    const env = benchEnvironment()
    assert.ok(env.cpuProbeStartMs > 0)
    assert.equal(env.loadAvg.length, 3)
    // As if the machine had been ten times as fast when the bench started.
    const end = environmentAtEnd({ ...env, cpuProbeStartMs: env.cpuProbeStartMs / 10 })
    assert.ok(end.cpuProbeEndMs > 0)
    assert.equal(end.loadAvgEnd.length, 3)
    assert.match(end.speedChange ?? '', /x slower/)
  })
})
