// pm = static (php-fpm.md §8.3): pm.max_children threads from the start, whatever the load; a
// thread that dies is replaced at once (php forks a replacement as soon as a child exits), and
// the pool serves on with all its threads. Never a "max children reached" episode.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
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
