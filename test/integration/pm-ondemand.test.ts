// pm = ondemand under a scripted load (php-fpm.md §8.6): no thread at start; a request that finds
// no free thread gets one started for it at once (not at the next heartbeat), up to
// pm.max_children, where php's "server reached max_children setting" warning is given once; idle
// threads end one per heartbeat once idle for longer than pm.process_idle_timeout (the idle
// thread that started first is the one looked at, as php does).
//
// pm.max_children 3, pm.process_idle_timeout 1s. From L (half-way between heartbeats) 4 requests
// that hold their thread until L + 1.2 s: 3 threads start at once, the 4th request waits and runs
// when a thread frees. Heartbeats at L + 0.5 s, 1.5 s, ...: 3 active; 3 idle; then idle 1.3 s > 1 s:
// one ends per heartbeat: 2, 1, 0.

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
pm = ondemand
pm.max_children = 3
pm.process_idle_timeout = 1s
root = {{ROOT}}
`

async function get (fpm: FpmHandle, query: string): Promise<{ status: number, ms: number }> {
  const t0 = Date.now()
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    const res = await conn.request({ params: buildCgiParams({ uri: `/hold.mjs?${query}`, scriptFilename: join(APPS, 'hold.mjs') }) }, { keepConn: false, timeoutMs: 20_000 })
    return { status: res.status, ms: Date.now() - t0 }
  } finally {
    await conn.close()
  }
}

const isTick = (l: LogLine): boolean => l.msg.startsWith('threads: ')
const sleepUntil = async (t: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now()))) }

describe('pm = ondemand: threads on demand, ended after the idle timeout', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('thread counts follow php-fpm\'s ondemand rules', { timeout: 30_000 }, async () => {
    const first = await fpm.waitForLog(isTick, 5000)
    assert.equal(first.msg, 'threads: 0 (idle 0, active 0)')
    let start = (first.time as number) + 500
    while (start < Date.now() + 300) start += 1000
    await sleepUntil(start)
    const load = Array.from({ length: 4 }, async () => await get(fpm, `until=${start + 1200}`))
    await sleepUntil(start + 4800)
    const ticks = fpm.logs.filter((l) => isTick(l) && (l.time as number) > start)
    const seen = ticks.map((l) => `${Math.round(((l.time as number) - start) / 100) / 10}s ${l.msg}`).join('\n')
    assert.deepEqual(ticks.map((l) => l.msg), [
      'threads: 3 (idle 0, active 3)',
      'threads: 3 (idle 3, active 0)',
      'threads: 2 (idle 2, active 0)',
      'threads: 1 (idle 1, active 0)',
      'threads: 0 (idle 0, active 0)'
    ], seen)
    const at = ticks.map((l) => ((l.time as number) - start) / 1000)
    ;[0.5, 1.5, 2.5, 3.5, 4.5].forEach((expected, i) => {
      assert.ok(Math.abs((at[i] ?? 0) - expected) < 0.4, `change ${i} at ${at[i] ?? '?'} s, expected ${expected} s\n${seen}`)
    })
    // the three threads were asked for on the requests' arrival, not on the heartbeat at +500 ms (when
    // each is ready depends on the machine: 150-420 ms to boot here)
    const started = fpm.logs.filter((l) => /^thread \d+ started$/.test(l.msg))
    assert.equal(started.length, 3)
    for (const l of started) {
      const askedMs = (l.time as number) - (l.bootMs as number) - start
      assert.ok(askedMs < 300, `a thread was asked for ${askedMs} ms after the load (ready ${(l.time as number) - start} ms after)`)
    }
    const reached = fpm.logs.filter((l) => /reached/.test(l.msg))
    assert.deepEqual(reached.map((l) => [l.level, l.msg]), [[40, 'server reached max_children setting (3), consider raising it']])
    const results = await Promise.all(load)
    for (const r of results) assert.equal(r.status, 200)
    assert.equal(fpm.logs.filter((l) => /has been retired by the process manager/.test(l.msg)).length, 3)

    // no thread left: the next request starts one and is served
    const cold = await get(fpm, 'ms=0')
    assert.equal(cold.status, 200)
    assert.ok(cold.ms < 2000, `cold start took ${cold.ms} ms`)
    assert.equal(fpm.logs.filter((l) => /^thread \d+ started$/.test(l.msg)).length, 4)
  })
})
