// The Pool in-process, with real threads: the counters and gauges the status page will show
// (src/pool/pool-stats.ts), the refusals as the server sees them (error codes), `started`, an
// ABORT for a waiting request, and close().

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Msg } from '../../src/common/messages.ts'
import type { WorkerResult } from '../../src/common/messages.ts'
import { loadConfig } from '../../src/config/load.ts'
import type { PoolConfig } from '../../src/config/types.ts'
import { silentLogger } from '../../src/log/logger.ts'
import { Pool } from '../../src/pool/pool.ts'
import type { PoolRequest, TaskFields } from '../../src/pool/pool-request.ts'
import { REPO } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/pm-apps')

function poolConfig (dir: string, lines: string[]): PoolConfig {
  writeFileSync(join(dir, 'fpm.conf'), ['[www]', 'listen = 127.0.0.1:9999', `root = ${APPS}`, ...lines].join('\n') + '\n')
  const r = loadConfig({ cwd: dir, configFile: 'fpm.conf', env: {} })
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'))
  const p = r.config.pools[0]
  assert.ok(p)
  return p
}

class Request implements PoolRequest {
  poolId = 0
  threadId = 0
  startedAtMs = 0
  readonly method = 'GET'
  readonly uri = '/'
  readonly done: Promise<{ result: WorkerResult | null, error: (Error & { code?: string }) | null }>
  #resolve!: (v: { result: WorkerResult | null, error: Error | null }) => void
  constructor () { this.done = new Promise((resolve) => { this.#resolve = resolve }) }
  onHead (): void {}
  onChunk (): void {}
  onPull (): void {}
  onWorkerLog (): void {}
  onTimedOut (): void {}
  onSettled (result: WorkerResult | null, error: Error | null): void { this.#resolve({ result, error }) }
}

function task (script: string, query: string): TaskFields {
  const uri = `/${script}?${query}`
  return {
    script: join(APPS, script),
    params: ['REQUEST_METHOD', 'GET', 'REQUEST_URI', uri, 'SCRIPT_FILENAME', join(APPS, script), 'HTTP_HOST', 'example.test', 'SERVER_NAME', 'example.test', 'SERVER_PORT', '80'],
    body: null,
    bodyStreaming: false,
    isHead: false
  }
}

function run (pool: Pool, script: string, query: string): Request {
  const req = new Request()
  pool.dispatch(req, task(script, query))
  return req
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('Pool counters and refusals', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'node-fpm-pool-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  test('queue full, queue timeout, an aborted waiting request, closing: each counted, each with its code', async () => {
    const pool = new Pool(poolConfig(dir, ['pm = static', 'pm.max_children = 1', 'request.queue_max = 2', 'request.queue_timeout = 400ms']), silentLogger())
    await pool.started
    assert.deepEqual({ ...pool.stats, startedAtMs: 0 }, {
      startedAtMs: 0,
      accepted: 0,
      completed: 0,
      maxQueued: 0,
      refusedQueueFull: 0,
      refusedQueueTimeout: 0,
      refusedClosed: 0,
      maxChildrenReached: 0,
      slowRequests: 0,
      takenBack: 0,
      maxActive: 0,
      threadsStarted: 1,
      threadsRecycled: 0,
      threadsOverHeapLimit: 0,
      threadsRetired: 0,
      threadsDied: 0,
      threadsOutOfMemory: 0,
      emergencyRestarts: 0,
      requestsTimedOut: 0,
      unhandledRejections: 0,
      uncaughtExceptions: 0,
      threadsTerminated: 0,
      threadsStuck: 0,
      threads: 1,
      idle: 1,
      active: 0,
      starting: 0,
      leaving: 0,
      stuck: 0,
      queued: 0,
      queueMax: 2
    })

    const busy = run(pool, 'hold.mjs', 'ms=800')
    await sleep(50)
    assert.notEqual(busy.threadId, 0)
    assert.ok(busy.startedAtMs > 0)
    const waiting = [run(pool, 'hold.mjs', 'ms=1'), run(pool, 'hold.mjs', 'ms=1')]
    assert.equal(waiting[0]?.threadId, 0, 'waits in the pool, not on a thread')
    const full = run(pool, 'quick.mjs', '')
    assert.equal((await full.done).error?.code, 'FPM_ERR_QUEUE_FULL')
    assert.equal(pool.stats.queued, 2)

    for (const w of waiting) assert.equal((await w.done).error?.code, 'FPM_ERR_QUEUE_TIMEOUT')
    const aborted = run(pool, 'quick.mjs', '')
    pool.send(aborted, { t: Msg.ABORT, id: aborted.poolId, reason: 'gone' })
    assert.deepEqual(await aborted.done, { result: { response: null, error: null }, error: null })

    const ok = await busy.done
    assert.equal(ok.error, null)
    assert.match(ok.result?.response?.head ?? '', /Content-Type/i)
    const stats = pool.stats
    assert.deepEqual([stats.accepted, stats.completed, stats.refusedQueueFull, stats.refusedQueueTimeout, stats.maxQueued, stats.maxActive, stats.queued, stats.active],
      [5, 1, 1, 2, 2, 1, 0, 0])

    const closing = pool.close()
    const late = run(pool, 'quick.mjs', '')
    assert.equal((await late.done).error?.code, 'FPM_ERR_POOL_CLOSED')
    await closing
    assert.equal(pool.stats.refusedClosed, 1)
  })

  test('close() lets the waiting requests run first', async () => {
    const pool = new Pool(poolConfig(dir, ['pm = ondemand', 'pm.max_children = 1']), silentLogger())
    await pool.started
    assert.equal(pool.stats.threads, 0)
    const reqs = [run(pool, 'hold.mjs', 'ms=200'), run(pool, 'hold.mjs', 'ms=1'), run(pool, 'hold.mjs', 'ms=1')]
    assert.equal(pool.stats.starting, 1, 'one thread started for them (pm.max_children = 1)')
    await pool.close()
    for (const r of reqs) assert.equal((await r.done).error, null)
    assert.equal(pool.stats.completed, 3)
    assert.equal(pool.stats.maxChildrenReached, 1)
  })
})
