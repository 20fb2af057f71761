// pm = static (php-fpm.md §8.3): pm.max_children threads from the start, whatever the load; a
// thread that dies is replaced at once (php forks a replacement as soon as a child exits), and
// the pool serves on with all its threads. Never a "max children reached" episode.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { getScript } from '../helpers/fcgi-requests.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')

const CONFIG = `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
`

async function get (fpm: FpmHandle, script: string, query = ''): Promise<{ status: number, body: string }> {
  return await getScript(fpm.port, APPS, script, query)
}

describe('pm = static', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('pm.max_children threads at start; a thread that dies is replaced at once', async () => {
    const tick = await fpm.waitForLog((l) => l.msg.startsWith('threads: '), 5000)
    assert.equal(tick.msg, 'threads: 2 (idle 2, active 0)')
    const before = await Promise.all([get(fpm, 'hold.mjs', 'ms=200'), get(fpm, 'hold.mjs', 'ms=200')])
    assert.equal(new Set(before.map((r) => r.body)).size, 2, 'two threads')

    assert.equal((await get(fpm, 'exit.mjs')).status, 502)
    const died = await fpm.waitForLog((l) => /^thread \d+ exited with code 3 after [\d.]+ seconds from start$/.test(l.msg))
    assert.equal(died.level, 40)
    // the replacement is there: two requests at once run on two threads, neither of them the dead one
    await fpm.waitForLog((l) => /^thread \d+ started$/.test(l.msg) && (l.time as number) >= (died.time as number))
    const after = await Promise.all([get(fpm, 'hold.mjs', 'ms=200'), get(fpm, 'hold.mjs', 'ms=200')])
    assert.deepEqual(after.map((r) => r.status), [200, 200])
    assert.equal(new Set(after.map((r) => r.body)).size, 2, 'two threads')
    assert.ok(!after.some((r) => r.body === String(died.thread)), 'not on the dead thread')
    assert.equal(fpm.logs.filter((l) => /reached/.test(l.msg)).length, 0)
  })
})

// Threads boot a few at a time (one per CPU, at least 2): the pool serves once the first ones are
// up, and the others follow without any being started twice (they count as starting meanwhile).
describe('pm = static, more threads than boot at once', () => {
  const THREADS = 6
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG.replace('pm.max_children = 2', `pm.max_children = ${THREADS}`), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('every initial thread starts exactly once, and the pool says when they are all up', async () => {
    const ready = fpm.logs.find((l) => l.msg === 'ready to handle connections')
    assert.ok(ready !== undefined)
    // Served at once, whatever is still booting.
    assert.equal((await get(fpm, 'hold.mjs', 'ms=0')).status, 200)
    const allUp = await fpm.waitForLog((l) => /^\d+ initial threads ready in \d+ ms$/.test(l.msg))
    assert.match(allUp.msg, new RegExp(`^${THREADS} initial threads ready`))
    assert.ok((allUp.time as number) >= (ready.time as number), 'all up at or after the ready line')
    if (availableParallelism() < THREADS) {
      const startedBeforeReady = fpm.logs.filter((l) => /^thread \d+ started$/.test(l.msg) && (l.time as number) <= (ready.time as number)).length
      assert.ok(startedBeforeReady < THREADS, `${startedBeforeReady} threads had started by the ready line`)
    }
    // The heartbeat counts the booting ones as starting: it never asks for more. Its line is logged
    // when its text changes, and a booting thread counts as idle in it, so the last line may come
    // from before the last thread was up: wait for heartbeats (1 s apart) rather than for a line.
    await sleep(2500)
    const ticks = fpm.logs.filter((l) => l.msg.startsWith('threads: '))
    assert.equal(ticks.at(-1)?.msg, `threads: ${THREADS} (idle ${THREADS}, active 0)`)
    assert.equal(fpm.logs.filter((l) => /^thread \d+ started$/.test(l.msg)).length, THREADS)
    const until = Date.now() + 300
    const bodies = await Promise.all(Array.from({ length: THREADS }, async () => (await get(fpm, 'hold.mjs', `until=${until}`)).body))
    assert.equal(new Set(bodies).size, THREADS, `${THREADS} requests at once run on ${THREADS} threads`)
    assert.equal(fpm.logs.filter((l) => /^thread \d+ started$/.test(l.msg)).length, THREADS)
  })
})
