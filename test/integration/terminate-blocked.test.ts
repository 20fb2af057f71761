// request_terminate_timeout against a thread stuck in a blocking system call (readFileSync of a
// FIFO without a writer), which V8's TerminateExecution cannot interrupt (node-runtime.md §2): the
// client still gets 504, the thread is reported as stuck and never gets work again, a new thread
// serves meanwhile, and once the call returns the thread exits and the server stops cleanly.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import type { FcgiResponse } from '../../src/client/fcgi-client.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/timeout-apps')

function hasMkfifo (): boolean {
  if (process.platform === 'win32') return false
  try {
    execFileSync('mkfifo', ['--help'], { stdio: 'ignore' })
    return true
  } catch {
    try {
      execFileSync('sh', ['-c', 'command -v mkfifo'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }
}

async function get (fpm: FpmHandle, script: string, query = ''): Promise<FcgiResponse> {
  const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
  try {
    const uri = `/${script}${query === '' ? '' : `?${query}`}`
    return await conn.request({ params: buildCgiParams({ uri, scriptFilename: join(APPS, script) }) })
  } finally {
    await conn.close()
  }
}

/** Opens the FIFO for writing without blocking (ENXIO when nobody reads it) and writes `text`. */
function release (fifo: string, text: string): void {
  const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

describe('a thread stuck in a blocking call', { skip: hasMkfifo() ? false : 'no mkfifo on this platform' }, () => {
  let fpm: FpmHandle
  let fifo: string
  before(async () => {
    fpm = await startFpm(`[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = {{ROOT}}
env[FIFO] = {{DIR}}/fifo
request_terminate_timeout = 1s
request_terminate_timeout_grace = 200ms
`, { root: APPS })
    fifo = join(fpm.dir, 'fifo')
    execFileSync('mkfifo', [fifo])
  })
  after(async () => {
    try { release(fifo, 'late') } catch { /* nobody reads it any more */ }
    await fpm.stop()
  })

  test('504, reported as stuck, capacity replaced; when the call returns the thread exits and the server stops cleanly', async () => {
    const before = (await get(fpm, 'whoami.mjs')).body.toString()
    const t0 = Date.now()
    const res = await get(fpm, 'fifo.mjs')
    assert.equal(res.status, 504)
    assert.ok(Date.now() - t0 < 5000)

    // A new thread serves while the old one is still blocked.
    const during = await get(fpm, 'whoami.mjs')
    assert.equal(during.status, 200)
    assert.notEqual(during.body.toString(), before)

    const stuck = await fpm.waitForLog((l) => l.level === 50 && l.msg.startsWith(`thread ${before} is stuck in a blocking call and cannot be terminated`), 8000)
    assert.equal(stuck.pool, 'www')
    assert.match(stuck.msg, /1 stuck thread\(s\) run on top of pm\.max_children until it returns$/)
    // ... and it never gets work again: every request runs on the new thread
    const served = await Promise.all([1, 2, 3, 4].map(async () => await get(fpm, 'whoami.mjs')))
    for (const r of served) {
      assert.equal(r.status, 200)
      assert.equal(r.body.toString(), during.body.toString())
    }

    release(fifo, 'now')
    await fpm.waitForLog((l) => l.msg.startsWith(`thread ${before}, stuck in a blocking call, exited at last`), 5000)
    assert.equal((await get(fpm, 'whoami.mjs')).status, 200)
    const code = await fpm.stop()
    assert.equal(code, 0)
  })
})
