// emergency_restart_threshold / emergency_restart_interval (php-fpm.md §8.7), with real threads and
// a real server: each handler death (process.exit() in a handler) is replaced at once; when the
// threshold of deaths falls within the interval, every thread of the pool is replaced gracefully
// (each once a new thread is ready), with php's wording adapted, and the pool serves on. Deaths
// spread over more than the interval do not trigger it.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')
const WARN = 40

const config = (interval: string): string => `[global]
log_level = debug
emergency_restart_threshold = 3
emergency_restart_interval = ${interval}

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 3
root = {{ROOT}}
`

async function get (fpm: FpmHandle, script: string, query = ''): Promise<{ status: number, body: string }> {
  const uri = `/${script}${query === '' ? '' : `?${query}`}`
  const res = await fcgiRequest(`127.0.0.1:${fpm.port}`, { params: buildCgiParams({ uri, scriptFilename: join(APPS, script) }) }, { timeoutMs: 10_000 })
  return { status: res.status, body: res.body.toString() }
}

/** The three threads of the pool: three requests that overlap run on all of them. */
async function allThreads (fpm: FpmHandle): Promise<string[]> {
  const res = await Promise.all([1, 2, 3].map(async () => await get(fpm, 'hold.mjs', 'ms=300')))
  for (const r of res) assert.equal(r.status, 200)
  return res.map((r) => r.body).sort()
}

async function die (fpm: FpmHandle): Promise<void> {
  const deaths = fpm.logs.filter((l) => / exited with code 3 /.test(l.msg)).length
  assert.equal((await get(fpm, 'exit.mjs')).status, 502)
  await fpm.waitForLog(() => fpm.logs.filter((l) => / exited with code 3 /.test(l.msg)).length > deaths)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const emergency = (l: LogLine): boolean => /^failed threads threshold/.test(l.msg)

describe('emergency_restart_threshold = 3, emergency_restart_interval = 10s', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config('10s'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('two deaths: each thread replaced, no emergency restart; the third: every thread of the pool is replaced and the pool serves', { timeout: 30_000 }, async () => {
    await die(fpm)
    await die(fpm)
    await sleep(100)
    assert.equal(fpm.logs.filter(emergency).length, 0)
    const alive = await allThreads(fpm)

    await die(fpm) // one of `alive` dies, the other two are restarted
    const line = await fpm.waitForLog(emergency)
    assert.equal(line.level, WARN)
    assert.equal(line.pool, 'www')
    assert.equal(line.msg, "failed threads threshold (3 in 10 sec) is reached, initiating a restart of the pool's threads (2 thread(s) replaced, each once a new thread is ready)")
    const survivors = alive.filter((id) => !fpm.logs.some((l) => l.msg.startsWith(`thread ${id} exited with code 3 `)))
    assert.equal(survivors.length, 2, `two of ${alive.join(', ')} survived the third death`)
    for (const id of survivors) {
      await fpm.waitForLog((l) => new RegExp(`^thread ${id} retired after \\d+ requests \\(emergency restart\\), \\d+\\.\\d{6} seconds from start$`).test(l.msg))
    }

    const fresh = await allThreads(fpm)
    assert.ok(!fresh.some((id) => alive.includes(id)), `${fresh.join(', ')} vs ${alive.join(', ')}`)
    assert.equal((await get(fpm, 'quick.mjs')).status, 200)
    assert.equal(fpm.logs.filter(emergency).length, 1)

    // the count starts again after an emergency restart
    await die(fpm)
    await sleep(100)
    assert.equal(fpm.logs.filter(emergency).length, 1)
  })
})

describe('deaths spread over more than emergency_restart_interval', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(config('1s'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('three deaths 600 ms apart with an interval of 1s: no emergency restart', { timeout: 30_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(600)
      await die(fpm)
    }
    await sleep(100)
    assert.equal(fpm.logs.filter(emergency).length, 0)
    assert.equal((await get(fpm, 'quick.mjs')).status, 200)
  })
})
