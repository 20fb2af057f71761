// pm = dynamic under a scripted load (php-fpm.md §8.2, §8.4): thread counts per heartbeat must be
// what php-fpm's maintenance algorithm gives for the same load shape. The server logs
// "threads: N (idle I, active A)" at debug on each heartbeat where that changes; the load is
// placed between heartbeats (their phase is read from the first such line), so that each
// heartbeat sees a settled load.
//
// pm.max_children 12, start 4, min_spare 4, max_spare 6. 9 requests in flight from L, 5 of them
// end at L + 5 s, the other 4 at L + 8 s. Heartbeats at L + 0.5 s, 1.5 s, ...; php:
//   L+0.5  4 threads, 4 active (5 requests wait), idle 0 < 4: fork min(rate 1, 4 - 0, 12 - 4) = 1 -> 5
//   L+1.5  5 active, idle 0: fork min(2, 4, 7) = 2 -> 7
//   L+2.5  7 active, idle 0: fork min(4, 4, 5) = 4 -> 11
//   L+3.5  9 active, idle 2: rate 8, "seems busy ... spawning 8 children, there are 2 idle, and
//          11 total children"; fork min(8, 2, 1) = 1 -> 12
//   L+4.5  9 active, idle 3 < 4, 12 running: "server reached pm.max_children setting (12)"
//   L+5.5  4 active, idle 8 > 6: the oldest idle thread ends -> 11
//   L+6.5  idle 7 > 6 -> 10
//   L+7.5  idle 6: nothing -> 10

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')

const CONFIG = `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = dynamic
pm.max_children = 12
pm.start_servers = 4
pm.min_spare_servers = 4
pm.max_spare_servers = 6
root = {{ROOT}}
`

async function holdUntil (fpm: FpmHandle, until: number): Promise<number> {
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    const res = await conn.request({ params: buildCgiParams({ uri: `/hold.mjs?until=${until}`, scriptFilename: join(APPS, 'hold.mjs') }) }, { keepConn: false, timeoutMs: 20_000 })
    return res.status
  } finally {
    await conn.close()
  }
}

const isTick = (l: LogLine): boolean => l.msg.startsWith('threads: ')
const sleepUntil = async (t: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now()))) }

describe('pm = dynamic: scaling up and down under a scripted load', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('thread counts per heartbeat follow php-fpm\'s algorithm', { timeout: 30_000 }, async () => {
    const first = await fpm.waitForLog(isTick, 5000)
    assert.equal(first.msg, 'threads: 4 (idle 4, active 0)')
    const phase = first.time as number
    // the load starts half-way between two heartbeats, at least 300 ms from now
    let start = phase + 500
    while (start < Date.now() + 300) start += 1000
    await sleepUntil(start)
    const load = [
      ...Array.from({ length: 5 }, async () => await holdUntil(fpm, start + 5000)),
      ...Array.from({ length: 4 }, async () => await holdUntil(fpm, start + 8000))
    ]
    await sleepUntil(start + 7800)
    const ticks = fpm.logs.filter((l) => isTick(l) && (l.time as number) > start && (l.time as number) < start + 7800)
    const seen = ticks.map((l) => `${Math.round(((l.time as number) - start) / 100) / 10}s ${l.msg}`)
    assert.deepEqual(ticks.map((l) => l.threads), [5, 7, 11, 12, 11, 10], seen.join('\n'))
    // each change on its heartbeat: L + 0.5, 1.5, 2.5, 3.5, then 5.5, 6.5 s (generous tolerance)
    const at = ticks.map((l) => ((l.time as number) - start) / 1000)
    ;[0.5, 1.5, 2.5, 3.5, 5.5, 6.5].forEach((expected, i) => {
      assert.ok(Math.abs((at[i] ?? 0) - expected) < 0.4, `change ${i} at ${at[i] ?? '?'} s, expected ${expected} s\n${seen.join('\n')}`)
    })
    const active = ticks.map((l) => l.active)
    assert.deepEqual(active, [4, 5, 7, 9, 4, 4], seen.join('\n'))

    const busy = fpm.logs.filter((l) => /seems busy/.test(l.msg))
    assert.deepEqual(busy.map((l) => l.msg), ['seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning 8 children, there are 2 idle, and 11 total children'])
    const reached = fpm.logs.filter((l) => /reached/.test(l.msg))
    assert.deepEqual(reached.map((l) => [l.level, l.msg]), [[40, 'server reached pm.max_children setting (12), consider raising it']])
    assert.ok(Math.abs(((reached[0]?.time as number) - start) / 1000 - 4.5) < 0.4, 'on the heartbeat after the last spawn')
    const retired = fpm.logs.filter((l) => /has been retired by the process manager/.test(l.msg))
    assert.equal(retired.length, 2)

    for (const status of await Promise.all(load)) assert.equal(status, 200)
  })
})
