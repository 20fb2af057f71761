// The status and ping pages behind a real nginx (its standard fastcgi_params: SCRIPT_NAME from
// $fastcgi_script_name, SCRIPT_FILENAME under the document root), as monitoring reaches them:
// Node's fetch -> nginx -> node-fpm. nginx missing: skipped locally, a failure under CI.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { findNginx, startNginx } from '../helpers/nginx.ts'
import type { NginxHandle } from '../helpers/nginx.ts'
import { parseOpenMetrics } from '../helpers/status-pages.ts'

const APPS = join(REPO, 'test/fixtures/status-apps')
const inCI = process.env.CI !== undefined && process.env.CI !== ''
const skip = findNginx() === null && !inCI ? 'nginx not installed' : false

describe('status and ping through nginx', { skip }, () => {
  let fpm: FpmHandle
  let nginx: NginxHandle
  before(async () => {
    fpm = await startFpm(`
[global]
error_log = stderr

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
pm.status_path = /status
ping.path = /ping
`, { root: APPS, args: ['--no-supervisor'] })
    nginx = await startNginx({ upstream: `127.0.0.1:${fpm.port}`, documentRoot: APPS })
  })
  after(async () => {
    await nginx?.stop()
    await fpm?.stop()
  })

  test('ping: pong, text/plain, not cached', async () => {
    const res = await fetch(`${nginx.url}/ping`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), 'pong')
    assert.equal(res.headers.get('content-type'), 'text/plain;charset=UTF-8')
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-store, must-revalidate, max-age=0')
    assert.equal(res.headers.get('expires'), 'Thu, 01 Jan 1970 00:00:00 GMT')
    const head = await fetch(`${nginx.url}/ping`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
  })

  test('status: json full, and openmetrics, with the requests nginx sent', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await fetch(`${nginx.url}/quick.mjs`)).status, 200)
    const res = await fetch(`${nginx.url}/status?json&full`)
    assert.equal(res.headers.get('content-type'), 'application/json')
    const s = await res.json() as Record<string, unknown> & { processes: Array<Record<string, unknown>> }
    assert.equal(s.pool, 'www')
    assert.equal(s['accepted conn'], 5, '2 pings (GET, HEAD) + 2 scripts + this page')
    assert.equal(s.processes.length, 2)
    assert.equal(s.processes.reduce((n, p) => n + (p.requests as number), 0), 2)
    for (const p of s.processes.filter((p) => (p.requests as number) > 0)) {
      assert.equal(p['request uri'], '/quick.mjs')
      assert.equal(p.script, join(APPS, 'quick.mjs'))
    }
    const om = await fetch(`${nginx.url}/status?openmetrics`)
    assert.equal(om.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8')
    assert.equal(parseOpenMetrics(await om.text()).get('phpfpm_accepted_connections')?.value, 6)
  })
})
