// The external-server harness, end to end: Debian's php-fpm (a real FastCGI server) behind a
// real nginx, both started by the helpers that the node-fpm tests and benchmarks use.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { findPhpFpm, startPhpFpm } from '../../bench/php-fpm.ts'
import type { PhpFpmHandle } from '../../bench/php-fpm.ts'
import { findNginx, startNginx } from '../helpers/nginx.ts'

/** Skips (or, for nginx under CI, fails) when a binary is missing; true when the test can run. */
function requireBinaries (t: TestContext): boolean {
  if (findNginx() === null) {
    if (process.env.CI !== undefined && process.env.CI !== '') {
      assert.fail('nginx is not installed, and CI must run the nginx tests (.ci/run installs it)')
    }
    t.skip('nginx not installed')
    return false
  }
  if (findPhpFpm() === null) {
    t.skip('php-fpm not installed')
    return false
  }
  return true
}

async function withPhpFpm (t: TestContext, fn: (fpm: PhpFpmHandle) => Promise<void>): Promise<void> {
  if (!requireBinaries(t)) return
  const fpm = await startPhpFpm({ workers: 2 })
  try {
    await fn(fpm)
  } finally {
    await fpm.stop()
  }
}

for (const keepConn of [false, true]) {
  test(`nginx -> php-fpm: GET /hello.php (keepConn ${keepConn})`, async (t) => {
    await withPhpFpm(t, async (fpm) => {
      const nginx = await startNginx({ upstream: fpm.address, documentRoot: fpm.scriptDir, keepConn })
      try {
        assert.match(nginx.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        for (let i = 0; i < 5; i++) {
          const res = await fetch(`${nginx.url}/hello.php`)
          assert.equal(res.status, 200)
          assert.equal(await res.text(), 'Hello, World!')
        }
        const json = await fetch(`${nginx.url}/json.php?x=1`)
        assert.equal(json.status, 200)
        assert.match(json.headers.get('content-type') ?? '', /^application\/json/)
        const body = await json.text()
        assert.equal((JSON.parse(body) as { total: number }).total, 17)
        assert.ok(body.length > 1400 && body.length < 1600, `json.php is ${body.length} bytes`)
        const missing = await fetch(`${nginx.url}/nope.php`)
        assert.equal(missing.status, 404)
        await missing.arrayBuffer()
      } finally {
        await nginx.stop()
      }
    })
  })
}

test('nginx -> php-fpm: POST 1 MB to /echo.php comes back byte for byte', async (t) => {
  await withPhpFpm(t, async (fpm) => {
    const nginx = await startNginx({ upstream: fpm.address, documentRoot: fpm.scriptDir, keepConn: true })
    try {
      const payload = randomBytes(1024 * 1024)
      const res = await fetch(`${nginx.url}/echo.php`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: payload
      })
      assert.equal(res.status, 200)
      const echoed = Buffer.from(await res.arrayBuffer())
      assert.equal(echoed.length, payload.length)
      assert.ok(echoed.equals(payload), 'echoed body differs from the payload')

      const big = await fetch(`${nginx.url}/big.php`)
      assert.equal(big.status, 200)
      assert.equal((await big.arrayBuffer()).byteLength, 65536)
    } finally {
      await nginx.stop()
    }
  })
})

test('nginx: requestBuffering off, extraLocations and stop() are honoured', async (t) => {
  await withPhpFpm(t, async (fpm) => {
    const nginx = await startNginx({
      upstream: fpm.address,
      documentRoot: fpm.scriptDir,
      requestBuffering: false,
      clientMaxBodySize: '1k',
      extraLocations: '    location = /ping { return 200 "pong"; }'
    })
    const { dir, url } = nginx
    try {
      const ping = await fetch(`${url}/ping`)
      assert.equal(await ping.text(), 'pong')
      const tooBig = await fetch(`${url}/echo.php`, { method: 'POST', body: 'x'.repeat(4096) })
      assert.equal(tooBig.status, 413)
      await tooBig.arrayBuffer()
      const small = await fetch(`${url}/echo.php`, { method: 'POST', body: 'abc' })
      assert.equal(await small.text(), 'abc')
    } finally {
      await nginx.stop()
    }
    await nginx.stop() // idempotent
    const { existsSync } = await import('node:fs')
    assert.equal(existsSync(dir), false, 'stop() removes the temp dir')
    await assert.rejects(fetch(`${url}/ping`))
  })
})

test('startNginx reports a bad config with the error log', async (t) => {
  if (!requireBinaries(t)) return
  await assert.rejects(
    startNginx({ upstream: '127.0.0.1:1', extraLocations: '    this_is_not_a_directive;' }),
    /exited during startup[\s\S]*unknown directive "this_is_not_a_directive"/
  )
})
