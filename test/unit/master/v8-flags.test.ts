// When the server keeps V8's parallel scavenge (src/master/v8-flags.ts): fewer threads than CPUs,
// or a command line that chose, in any of the spellings V8 takes. The flag's effect on real
// threads: test/integration/scavenges.test.ts.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SERIAL_SCAVENGES_FLAG, useSerialScavenges } from '../../../src/master/v8-flags.ts'

/** Pools of these sizes (only pm.max_children matters here). */
function pools (...maxChildren: number[]): Parameters<typeof useSerialScavenges>[0] {
  return { pools: maxChildren.map((n) => ({ pm: { maxChildren: n } })) } as unknown as Parameters<typeof useSerialScavenges>[0]
}

describe('useSerialScavenges', () => {
  it('sets the flag when the pools\' threads are at least the CPUs and the command line says nothing', () => {
    assert.equal(useSerialScavenges(pools(8), [], 2), SERIAL_SCAVENGES_FLAG)
    assert.equal(useSerialScavenges(pools(2), [], 2), SERIAL_SCAVENGES_FLAG)
    assert.equal(useSerialScavenges(pools(1, 2, 1), [], 4), SERIAL_SCAVENGES_FLAG)
    assert.equal(useSerialScavenges(pools(8), ['--max-old-space-size=512', '--parallel-marking', '--single-threaded-gc-x'], 2), SERIAL_SCAVENGES_FLAG)
  })

  it('keeps V8\'s default with fewer threads than CPUs', () => {
    assert.equal(useSerialScavenges(pools(1), [], 2), null)
    assert.equal(useSerialScavenges(pools(2, 4), [], 8), null)
  })

  it('keeps the choice of a command line that made one', () => {
    for (const flag of ['--parallel-scavenge', '--no-parallel-scavenge', '--parallel_scavenge', '--no_parallel_scavenge',
      '--parallel-scavenge=true', '--single-threaded-gc', '--single_threaded_gc', '--single-threaded']) {
      assert.equal(useSerialScavenges(pools(8), ['--expose-gc', flag], 2), null, flag)
    }
  })
})
