// pm.status_listen in the config: its address is checked at load (php's listen syntax and
// messages), and the status listener's config derived from the pool (status/status-listener.ts).

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../src/config/load.ts'
import { statusListenConfig, statusListenKey } from '../../../src/status/status-listener.ts'
import { statusListenPath } from '../../../src/status/pages.ts'

describe('pm.status_listen config', () => {
  let dir: string
  before(() => { dir = realpathSync(mkdtempSync(join(tmpdir(), 'node-fpm-status-'))) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  function load (lines: string[]): ReturnType<typeof loadConfig> {
    writeFileSync(join(dir, 'fpm.conf'), ['[www]', 'listen = 127.0.0.1:9000', 'pm = static', 'pm.max_children = 1', `root = ${dir}`, ...lines].join('\n') + '\n')
    return loadConfig({ cwd: dir, configFile: 'fpm.conf', env: {} })
  }

  test('a bad address is a config error naming the pool and the directive', () => {
    for (const [value, message] of [
      ['127.0.0.1:http', "[pool www] pm.status_listen: invalid port value 'http'"],
      ['127.0.0.1:70000', "[pool www] pm.status_listen: invalid port value '70000'"]
    ] as const) {
      const r = load([`pm.status_listen = ${value}`])
      assert.equal(r.ok, false, value)
      assert.deepEqual(r.ok ? [] : r.errors.map((e) => e.message), [message])
    }
  })

  test('the status listener: `<pool>_status`, the address parsed (unix paths against the prefix), the rest of listen kept', () => {
    const r = load(['pm.status_listen = status.sock', 'listen.allowed_clients = 127.0.0.1', 'listen.mode = 0600'])
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'))
    const pool = r.config.pools[0]!
    assert.deepEqual(r.notices, [], 'implemented: no notice')
    const status = statusListenConfig(pool)
    assert.equal(status?.name, 'www_status')
    assert.deepEqual(status?.listen.target, { kind: 'unix', path: join(dir, 'status.sock') })
    assert.equal(status?.listen.address, 'status.sock')
    assert.deepEqual(status?.listen.allowedClients, ['127.0.0.1'])
    assert.equal(status?.listen.mode, 0o600)
    assert.deepEqual(pool.listen.target, { kind: 'tcp', host: '127.0.0.1', port: 9000 }, 'the pool keeps its own')

    const without = load([])
    assert.ok(without.ok)
    assert.equal(statusListenConfig(without.config.pools[0]!), null)
  })

  test('with pm.status_listen a status path of "/" is long enough, and an unset one is "/" there (php)', () => {
    const r = load(['pm.status_listen = 127.0.0.1:9001', 'pm.status_path = /'])
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'))
    assert.equal(statusListenPath(null), '/')
    assert.equal(statusListenPath(''), '/')
    assert.equal(statusListenPath('/st'), '/st')
  })

  test('the supervisor\'s key for the status socket cannot be a pool name', () => {
    assert.notEqual(statusListenKey('www'), 'www_status')
    assert.ok(statusListenKey('www').includes('\u0000'))
  })
})
