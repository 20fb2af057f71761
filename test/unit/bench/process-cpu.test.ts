// bench/process-cpu.ts: the CPU time of a real process tree (a parent whose child burns CPU), read
// from /proc, Linux only.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { processTreeCpu } from '../../../bench/process-cpu.ts'

const SPIN_TREE = fileURLToPath(new URL('../../fixtures/bench/spin-tree.mjs', import.meta.url))

/** Resolves when the output so far matches `re`; rejects if the process ends first. */
async function waitFor (p: ChildProcessByStdio<Writable, Readable, null>, out: () => string, re: RegExp): Promise<void> {
  while (!re.test(out())) {
    const [what] = await Promise.race([once(p.stdout, 'data').then(() => ['data']), once(p, 'exit').then(() => ['exit'])])
    if (what === 'exit' && !re.test(out())) throw new Error(`the process ended; output: ${out()}`)
  }
}

describe('processTreeCpu', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, () => {
  test('counts the CPU time of a child of the root, not only the root', async () => {
    const parent = spawn(process.execPath, [SPIN_TREE], { stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      let out = ''
      parent.stdout.setEncoding('utf8')
      parent.stdout.on('data', (d: string) => { out += d })
      await waitFor(parent, () => out, /child \d+\n/)
      const childPid = Number(/child (\d+)/.exec(out)?.[1])
      const tree = processTreeCpu(parent.pid!)
      const childOnly = processTreeCpu(childPid)
      assert.ok(tree !== null && childOnly !== null)
      const before = tree()
      const childBefore = childOnly()
      parent.stdin.write('go\n')
      await waitFor(parent, () => out, /spun/)
      const spentMs = tree() - before
      // The child spun 300 ms of wall time on one core; the parent idled.
      assert.ok(spentMs >= 150 && spentMs < 2000, `tree CPU ${spentMs} ms`)
      assert.ok(childOnly() - childBefore >= 150, 'the child alone')
      parent.stdin.end()
      await once(parent, 'exit')
    } finally {
      parent.kill()
    }
  })

  test('a pid that is not running: null', () => {
    assert.equal(processTreeCpu(2 ** 22 + 12345), null)
  })
})
