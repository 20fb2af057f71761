// The ping page of a real server (status/pages.ts, php-fpm.md §5): php's headers in php's order,
// ping.response verbatim, HEAD, matched like the status page but first, counted in "accepted
// conn", answered while every thread is busy, and nothing when ping.path is not set.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { headOf, num, parseText, request, waitFor } from '../helpers/status-pages.ts'

const APPS = join(REPO, 'test/fixtures/status-apps')
const PING_HEAD = 'Content-type: text/plain;charset=UTF-8\r\nExpires: Thu, 01 Jan 1970 00:00:00 GMT\r\n' +
  'Cache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n\r\n'

describe('ping', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(`
[global]
error_log = stderr

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = {{ROOT}}
pm.status_path = /status
ping.path = /ping

[custom]
listen = 127.0.0.1:{{PORT2}}
pm = static
pm.max_children = 1
root = {{ROOT}}
; the same path for both: ping is checked first
pm.status_path = /health
ping.path = /health
ping.response = "I am alive: ok"
`, { root: APPS, args: ['--no-supervisor'] })
  })
  after(async () => { await fpm.stop() })

  test('pong, with php\'s headers in php\'s order, no newline; counted in accepted conn', async () => {
    for (const uri of ['/ping', '/ping?x=1']) {
      const res = await request(fpm.port, uri)
      assert.equal(res.status, 200)
      assert.equal(headOf(res), PING_HEAD)
      assert.equal(res.body.toString(), 'pong')
    }
    const status = parseText((await request(fpm.port, '/status')).body.toString())
    assert.equal(num(status.pool, 'accepted conn'), 3)
  })

  test('HEAD: the same headers, no body', async () => {
    const res = await request(fpm.port, '/ping', { method: 'HEAD' })
    assert.equal(headOf(res), PING_HEAD)
    assert.equal(res.body.length, 0)
  })

  test('ping.response verbatim, and ping wins over a status page at the same path', async () => {
    const res = await request(fpm.port2, '/health')
    assert.equal(headOf(res), PING_HEAD)
    assert.equal(res.body.toString(), 'I am alive: ok')
    // and /ping is nothing special in that pool
    assert.equal((await request(fpm.port2, '/ping', { documentRoot: APPS })).status, 404)
  })

  test('not a ping: another SCRIPT_NAME, or no SCRIPT_FILENAME (php\'s 404)', async () => {
    for (const uri of ['/Ping', '/ping/', '/pingx']) assert.equal((await request(fpm.port, uri, { documentRoot: APPS })).status, 404, uri)
    const noScript = await request(fpm.port, '/ping', { noScriptFilename: true })
    assert.equal(noScript.status, 404)
    assert.equal(noScript.body.toString(), 'File not found.\n')
    // SCRIPT_NAME decides: a request for a script whose SCRIPT_NAME is /ping is a ping
    const sn = await request(fpm.port, '/quick.mjs', { documentRoot: APPS, params: { SCRIPT_NAME: '/ping' } })
    assert.equal(sn.body.toString(), 'pong')
  })

  test('answered while the only thread is busy and requests queue', async () => {
    const gate = join(fpm.dir, 'gate')
    const held = [1, 2].map((n) => request(fpm.port, `/gate.mjs?gate=${encodeURIComponent(gate)}&n=${n}`, { documentRoot: APPS }))
    try {
      await waitFor(async () => {
        const s = parseText((await request(fpm.port, '/status')).body.toString())
        return num(s.pool, 'active processes') === 1 && num(s.pool, 'listen queue') === 1 ? true : undefined
      }, 'one request running, one queued')
      const res = await request(fpm.port, '/ping')
      assert.equal(res.body.toString(), 'pong')
    } finally {
      writeFileSync(gate, '')
    }
    for (const r of await Promise.all(held)) assert.equal(r.status, 200)
  })
})

describe('ping not configured', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(`
[global]
error_log = stderr

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = {{ROOT}}
`, { root: APPS, args: ['--no-supervisor'] })
  })
  after(async () => { await fpm.stop() })

  test('/ping and /status go on to script resolution', async () => {
    for (const uri of ['/ping', '/status']) {
      const res = await request(fpm.port, uri, { documentRoot: APPS })
      assert.equal(res.status, 404, uri)
      assert.equal(res.body.toString(), 'File not found.\n')
    }
    assert.match((await request(fpm.port, '/quick.mjs', { documentRoot: APPS })).body.toString(), /^\d+$/)
  })
})
