// Tests of the cross-field rules (src/config/validate.ts) through loadConfig, with php's exact
// messages and numbers (php-fpm.md §2.3): pm relations, ondemand, status/ping paths, slowlog,
// listen addresses (log-invalid-port, socket-uds-too-long-filename-test, duplicates), log_limit
// (log-bwd-limit-64-too-low-error), process.max, process.priority, allowed clients.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig } from '../../../src/config/load.ts'
import type { LoadResult } from '../../../src/config/load.ts'
import type { PoolConfig } from '../../../src/config/types.ts'

let dir: string
let seq = 0
before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-validate-'))) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Load fpm.conf = `global` lines, then one [www] pool per entry of `pools` (listen and root given). */
function load (global: string[], ...pools: string[][]): { prefix: string, result: LoadResult } {
  const prefix = path.join(dir, `p${++seq}`)
  fs.mkdirSync(path.join(prefix, 'public'), { recursive: true })
  const text = ['[global]', ...global, ...pools.flatMap((lines, i) => [
    `[${i === 0 ? 'www' : `pool${i}`}]`, `listen = 127.0.0.1:${9000 + i}`, 'root = public', ...lines
  ])].join('\n') + '\n'
  fs.writeFileSync(path.join(prefix, 'fpm.conf'), text)
  return { prefix, result: loadConfig({ cwd: prefix, configFile: 'fpm.conf', env: {} }) }
}

const loadPool = (...lines: string[]) => load([], lines).result
const STATIC = ['pm = static', 'pm.max_children = 2']

function errors (r: LoadResult): string[] {
  assert.equal(r.ok, false, 'expected errors')
  return r.ok ? [] : r.errors.map(e => e.message)
}

function pool (r: LoadResult): PoolConfig {
  assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
  const p = r.config.pools[0]
  assert.ok(p)
  return p
}

describe('pm', () => {
  it('is required: the process manager is missing', () => {
    assert.deepEqual(errors(loadPool('pm.max_children = 2')), ['[pool www] the process manager is missing (static, dynamic or ondemand)'])
  })
  it('needs pm.thread_concurrency >= 1', () => {
    assert.deepEqual(errors(loadPool('pm = static', 'pm.max_children = 2', 'pm.thread_concurrency = 0')), ['[pool www] pm.thread_concurrency(0) must be a positive value'])
  })
  it('needs pm.max_children >= 1', () => {
    assert.deepEqual(errors(loadPool('pm = static')), ['[pool www] pm.max_children must be a positive value'])
    assert.deepEqual(errors(loadPool('pm = ondemand', 'pm.max_children = -1')), ['[pool www] pm.max_children must be a positive value'])
  })

  const dynamic = (children: number, min: number | null, max: number | null, start: number | null = null, ...more: string[]) => loadPool(
    'pm = dynamic', `pm.max_children = ${children}`,
    ...(min === null ? [] : [`pm.min_spare_servers = ${min}`]),
    ...(max === null ? [] : [`pm.max_spare_servers = ${max}`]),
    ...(start === null ? [] : [`pm.start_servers = ${start}`]), ...more)

  it('dynamic: the spare servers are required and positive', () => {
    assert.deepEqual(errors(dynamic(5, null, 3)), ['[pool www] pm.min_spare_servers(0) must be a positive value'])
    assert.deepEqual(errors(dynamic(5, 1, null)), ['[pool www] pm.max_spare_servers(0) must be a positive value'])
    assert.deepEqual(errors(dynamic(5, -2, 3)), ['[pool www] pm.min_spare_servers(-2) must be a positive value'])
  })
  it('dynamic: spare servers cannot exceed max_children', () => {
    assert.deepEqual(errors(dynamic(4, 5, 6)), ['[pool www] pm.min_spare_servers(5) and pm.max_spare_servers(6) cannot be greater than pm.max_children(4)'])
    assert.deepEqual(errors(dynamic(4, 1, 6)), ['[pool www] pm.min_spare_servers(1) and pm.max_spare_servers(6) cannot be greater than pm.max_children(4)'])
  })
  it('dynamic: max_spare_servers cannot be less than min_spare_servers', () => {
    assert.deepEqual(errors(dynamic(5, 3, 2)), ['[pool www] pm.max_spare_servers(2) must not be less than pm.min_spare_servers(3)'])
  })
  it('dynamic: start_servers within [min, max]', () => {
    assert.deepEqual(errors(dynamic(10, 2, 4, 5)), ['[pool www] pm.start_servers(5) must not be less than pm.min_spare_servers(2) and not greater than pm.max_spare_servers(4)'])
    assert.deepEqual(errors(dynamic(10, 2, 4, 1)), ['[pool www] pm.start_servers(1) must not be less than pm.min_spare_servers(2) and not greater than pm.max_spare_servers(4)'])
    assert.equal(pool(dynamic(10, 2, 4, 3)).pm.startServers, 3)
  })
  it('proc-no-start-server / bug68458: an unset start_servers is a NOTICE with the computed default', () => {
    const r = dynamic(5, 1, 3)
    assert.equal(pool(r).pm.startServers, 2)
    assert.deepEqual(r.notices, [{ level: 'notice', message: "[pool www] pm.start_servers is not set. It's been set to 2." }])
    assert.equal(pool(dynamic(20, 2, 9)).pm.startServers, 5)
    assert.equal(pool(dynamic(20, 2, 9, 0)).pm.startServers, 5)
  })
  it('dynamic: max_spawn_rate must be positive', () => {
    assert.deepEqual(errors(dynamic(5, 1, 3, 2, 'pm.max_spawn_rate = 0')), ['[pool www] pm.max_spawn_rate must be a positive value'])
  })
  it('dynamic: reports only the first broken relation, as php does', () => {
    assert.equal(errors(dynamic(1, 0, 0, 9, 'pm.max_spawn_rate = 0')).length, 1)
  })
  it('ondemand: the idle timeout must be > 0; spare servers are zeroed', () => {
    assert.deepEqual(errors(loadPool('pm = ondemand', 'pm.max_children = 2', 'pm.process_idle_timeout = 0')),
      ['[pool www] pm.process_idle_timeout(0s) must be greater than 0s'])
    const p = pool(loadPool('pm = ondemand', 'pm.max_children = 2', 'pm.min_spare_servers = 1', 'pm.max_spare_servers = 9', 'pm.start_servers = 4'))
    assert.deepEqual([p.pm.startServers, p.pm.minSpareServers, p.pm.maxSpareServers], [0, 0, 0])
  })
  it('ondemand: raises a low listen.backlog to 511 with a WARNING', () => {
    const r = loadPool('pm = ondemand', 'pm.max_children = 2', 'listen.backlog = 128')
    assert.equal(pool(r).listen.backlog, 511)
    assert.deepEqual(r.notices, [{ level: 'warning', message: '[pool www] listen.backlog(128) was too low for the ondemand process manager. I updated it for you to 511.' }])
    assert.equal(pool(loadPool('pm = ondemand', 'pm.max_children = 2', 'listen.backlog = -1')).listen.backlog, -1)
  })
  it('bug68423-multi-pool-all-pms: dynamic, ondemand and static pools load together', () => {
    const r = load([], ['pm = dynamic', 'pm.max_children = 5', 'pm.min_spare_servers = 1', 'pm.max_spare_servers = 3', 'pm.start_servers = 1'],
      ['pm = ondemand', 'pm.max_children = 5'], STATIC).result
    assert.ok(r.ok)
    assert.deepEqual(r.config.pools.map(p => p.pm.mode), ['dynamic', 'ondemand', 'static'])
  })
})

describe('pm.max_requests_jitter and the request queue (node-fpm)', () => {
  it('pm.max_requests_jitter: 0 by default, never negative', () => {
    assert.equal(pool(loadPool(...STATIC)).pm.maxRequestsJitter, 0)
    assert.equal(pool(loadPool(...STATIC, 'pm.max_requests = 500', 'pm.max_requests_jitter = 50')).pm.maxRequestsJitter, 50)
    assert.deepEqual(errors(loadPool(...STATIC, 'pm.max_requests_jitter = -1')), ['[pool www] pm.max_requests_jitter(-1) must be a positive value or 0'])
  })
  it('request.queue_max: unset is 32 per thread slot; 0 is allowed (no request waits); never negative', () => {
    assert.equal(pool(loadPool(...STATIC)).request.queueMax, 64)
    assert.equal(pool(loadPool('pm = ondemand', 'pm.max_children = 5', 'pm.thread_concurrency = 4')).request.queueMax, 640)
    assert.equal(pool(loadPool(...STATIC, 'request.queue_max = 0')).request.queueMax, 0)
    assert.equal(pool(loadPool(...STATIC, 'request.queue_max = 5000')).request.queueMax, 5000)
    assert.deepEqual(errors(loadPool(...STATIC, 'request.queue_max = -1')), ['[pool www] request.queue_max(-1) must be a positive value or 0'])
  })
  it('pm.heap_soft_limit: unset is 3/4 of pm.heap_limit (or of memory_limit), off without one; 0 = off; below pm.heap_limit', () => {
    const MiB = 1024 * 1024
    assert.equal(pool(loadPool(...STATIC)).heapSoftLimitBytes, 0)
    assert.equal(pool(loadPool(...STATIC, 'pm.heap_limit = 256M')).heapSoftLimitBytes, 192 * MiB)
    assert.equal(pool(loadPool(...STATIC, 'php_admin_value[memory_limit] = 100M')).heapSoftLimitBytes, 75 * MiB)
    assert.equal(pool(loadPool(...STATIC, 'pm.heap_limit = 256M', 'pm.heap_soft_limit = 0')).heapSoftLimitBytes, 0)
    assert.equal(pool(loadPool(...STATIC, 'pm.heap_soft_limit = 40M')).heapSoftLimitBytes, 40 * MiB)
    assert.equal(pool(loadPool(...STATIC, 'pm.heap_limit = 64M', 'pm.heap_soft_limit = 48M')).heapSoftLimitBytes, 48 * MiB)
    assert.deepEqual(errors(loadPool(...STATIC, 'pm.heap_limit = 64M', 'pm.heap_soft_limit = 64M')),
      ['[pool www] pm.heap_soft_limit(64M) must be less than pm.heap_limit(64M)'])
    assert.deepEqual(errors(loadPool(...STATIC, 'php_value[memory_limit] = 32M', 'pm.heap_soft_limit = 100M')),
      ['[pool www] pm.heap_soft_limit(100M) must be less than pm.heap_limit(32M)'])
  })
  it('request.queue_timeout: 30s by default, must be > 0 (nothing waits forever)', () => {
    assert.equal(pool(loadPool(...STATIC)).request.queueTimeoutMs, 30_000)
    assert.equal(pool(loadPool(...STATIC, 'request.queue_timeout = 500ms')).request.queueTimeoutMs, 500)
    assert.deepEqual(errors(loadPool(...STATIC, 'request.queue_timeout = 0')), ['[pool www] request.queue_timeout(0s) must be greater than 0s'])
  })
})

describe('listen', () => {
  it('is required', () => {
    const prefix = path.join(dir, 'nolisten')
    fs.mkdirSync(path.join(prefix, 'pools.d'), { recursive: true })
    fs.writeFileSync(path.join(prefix, 'pools.d/www.conf'), '[www]\npm = static\npm.max_children = 1\nhandler = pools.d/www.conf\n')
    assert.deepEqual(errors(loadConfig({ cwd: prefix, env: {} })), ['[pool www] no listen address have been defined!'])
  })
  it('log-invalid-port: listen = 127.0.0.1:69002', () => {
    assert.deepEqual(errors(loadPool('listen = 127.0.0.1:69002', ...STATIC)), ["[pool www] invalid port value '69002'"])
    assert.deepEqual(errors(loadPool('listen = 0', ...STATIC)), ["[pool www] invalid port value '0'"])
  })
  it('socket-uds-too-long-filename-test: a unix socket path of 108 bytes or more', () => {
    const long = `/tmp/${'a'.repeat(110)}.sock`
    assert.deepEqual(errors(loadPool(`listen = ${long}`, ...STATIC)),
      [`[pool www] cannot bind to UNIX socket '${long}' as path is too long (found length: ${long.length}, maximal length: 108)`])
  })
  it('parses the forms into listen.target', () => {
    assert.deepEqual(pool(loadPool('listen = [::]:9000', ...STATIC)).listen.target, { kind: 'tcp', host: '::', port: 9000 })
    assert.deepEqual(pool(loadPool('listen = 9000', ...STATIC)).listen.target, { kind: 'tcp', host: null, port: 9000 })
    assert.deepEqual(pool(loadPool('listen = \\\\.\\pipe\\fpm', ...STATIC)).listen.target, { kind: 'pipe', path: '\\\\.\\pipe\\fpm' })
  })
  it("refuses two pools on one address: unable to set listen address as it's already used", () => {
    const r = load([], [...STATIC, 'listen = 127.0.0.1:9100'], [...STATIC, 'listen = 127.0.0.1:9100'], [...STATIC, 'listen = 127.0.0.1:9100']).result
    assert.deepEqual(errors(r), [
      "[pool pool1] unable to set listen address as it's already used in another pool 'www'",
      "[pool pool2] unable to set listen address as it's already used in another pool 'www'"
    ])
  })
  it('compares unix sockets after resolving relative paths', () => {
    const r = load([], [...STATIC, 'listen = run/fpm.sock'], [...STATIC, `listen = ${path.join(dir, `p${seq + 1}`, 'run/fpm.sock')}`]).result
    assert.deepEqual(errors(r), ["[pool pool1] unable to set listen address as it's already used in another pool 'www'"])
  })
  it('warns about wrong listen.allowed_clients entries and keeps the valid ones', () => {
    const r = loadPool(...STATIC, 'listen.allowed_clients = 127.0.0.1,xxx,::1')
    assert.deepEqual(pool(r).listen.allowedClients, ['127.0.0.1', '::1'])
    assert.deepEqual(r.notices, [{ level: 'warning', message: "[pool www] Wrong IP address 'xxx' in listen.allowed_clients" }])
  })
  it('socket-invalid-allowed-clients: no valid entry means no client is allowed', () => {
    const r = loadPool(...STATIC, 'listen.allowed_clients = xxx')
    assert.deepEqual(pool(r).listen.allowedClients, [])
    assert.deepEqual(r.notices.map(n => n.message), ["[pool www] Wrong IP address 'xxx' in listen.allowed_clients", '[pool www] There are no allowed addresses'])
  })
})

describe('status and ping paths', () => {
  const cases: Array<[string[], string]> = [
    [['pm.status_path = status'], "[pool www] the status path 'status' must start with a '/'"],
    [['pm.status_path = /'], "[pool www] the status path '/' is not long enough"],
    [['pm.status_path = /st?'], "[pool www] the status path '/st?' must contain only the following characters '[alphanum]/_-.~'"],
    [['ping.path = ping'], "[pool www] the ping path 'ping' must start with a '/'"],
    [['ping.path = /'], "[pool www] the ping path '/' is not long enough"],
    [['ping.path = "/pi ng"'], "[pool www] the ping path '/pi ng' must contain only the following characters '[alphanum]/_-.~'"],
    [['ping.path = /ping', 'ping.response = '], "[pool www] the ping response page '' is not long enough"]
  ]
  for (const [lines, message] of cases) it(lines.join(', '), () => assert.deepEqual(errors(loadPool(...STATIC, ...lines)), [message]))

  it('allows a status path of / with pm.status_listen', () => {
    assert.equal(pool(loadPool(...STATIC, 'pm.status_path = /', 'pm.status_listen = 127.0.0.1:9200')).pm.statusPath, '/')
  })
  it('defaults ping.response to pong with ping.path, and forgets it without', () => {
    assert.deepEqual(pool(loadPool(...STATIC, 'ping.path = /ping')).ping, { path: '/ping', response: 'pong' })
    assert.deepEqual(pool(loadPool(...STATIC, 'ping.response = alive')).ping, { path: null, response: null })
  })
})

describe('slowlog', () => {
  it("needs 'slowlog' for request_slowlog_timeout and request_slowlog_trace_depth", () => {
    assert.deepEqual(errors(loadPool(...STATIC, 'request_slowlog_timeout = 5')), ["[pool www] 'slowlog' must be specified for use with 'request_slowlog_timeout'"])
    assert.deepEqual(errors(loadPool(...STATIC, 'request_slowlog_trace_depth = 5')), ["[pool www] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'"])
  })
  it('request_slowlog_timeout cannot exceed request_terminate_timeout', () => {
    assert.deepEqual(errors(loadPool(...STATIC, 'slowlog = s.log', 'request_slowlog_timeout = 5', 'request_terminate_timeout = 3')),
      ["[pool www] 'request_slowlog_timeout' (5) can't be greater than 'request_terminate_timeout' (3)"])
    assert.deepEqual(errors(loadPool(...STATIC, 'slowlog = s.log', 'request_slowlog_timeout = 1500ms', 'request_terminate_timeout = 1')),
      ["[pool www] 'request_slowlog_timeout' (1500ms) can't be greater than 'request_terminate_timeout' (1)"])
  })
  it('request_slowlog_trace_depth: 0 means 20, negative is refused', () => {
    assert.equal(pool(loadPool(...STATIC, 'request_slowlog_trace_depth = 0')).slowlog.traceDepth, 20)
    assert.deepEqual(errors(loadPool(...STATIC, 'slowlog = s.log', 'request_slowlog_trace_depth = -1')),
      ["[pool www] 'request_slowlog_trace_depth' (-1) must be a positive value"])
  })
})

describe('access.format (php-fpm.md §2.3 item 17, §6.2)', () => {
  const warnings = (r: LoadResult) => r.notices.filter(n => n.level === 'warning').map(n => n.message)

  it("refuses a format that does not compile, with php's two messages on one line", () => {
    assert.deepEqual(errors(loadPool(...STATIC, 'access.log = a.log', 'access.format = "%R %{hours}d"')),
      ["[pool www] wrong format for access.format '%R %{hours}d': only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('hours')"])
    assert.deepEqual(errors(loadPool(...STATIC, 'access.log = a.log', 'access.format = %R %x')),
      ["[pool www] wrong format for access.format '%R %x': Invalid token in the access.format (%x)"])
    assert.deepEqual(errors(loadPool(...STATIC, 'access.log = a.log', 'access.format = %{User-Agent}i')),
      ["[pool www] wrong format for access.format '%{User-Agent}i': Invalid token in the access.format (%i)"])
  })

  it('accepts good formats and keeps the source only (the config stays plain data)', () => {
    const format = '%R - %u %t "%m %r%Q%q" %s %f %{mili}d %{kilo}M %C%%'
    const r = loadPool(...STATIC, 'access.log = a.log', `access.format = '${format}'`)
    assert.equal(pool(r).access.format, format)
    assert.deepEqual(warnings(r), [])
  })

  it("checks php's default applied with access.log", () => {
    assert.equal(pool(loadPool(...STATIC, 'access.log = a.log')).access.format, '%R - %u %t "%m %r" %s')
  })

  it('like php, does not refuse a bad format while access.log is unset: it warns', () => {
    const r = loadPool(...STATIC, 'access.format = %x')
    assert.equal(pool(r).access.format, '%x')
    assert.deepEqual(warnings(r),
      ["[pool www] wrong format for access.format '%x': Invalid token in the access.format (%x) (unused: access.log is not set)"])
  })
})

describe('global rules', () => {
  it('log-bwd-limit-64-too-low-error: log_limit must be greater than 512 (512 itself is fine)', () => {
    assert.deepEqual(errors(load(['log_limit = 64'], STATIC).result), ['log_limit must be greater than 512'])
    assert.equal(load(['log_limit = 512'], STATIC).result.ok, true)
  })
  it("process.max can't be negative", () => {
    assert.deepEqual(errors(load(['process.max = -1'], STATIC).result), ["process_max can't be negative"])
  })
  it('config-test-process-max-invalid/-valid: process.max vs the threads started at start-up', () => {
    const dynamic = ['pm = dynamic', 'pm.max_children = 10', 'pm.min_spare_servers = 2', 'pm.max_spare_servers = 6', 'pm.start_servers = 4']
    assert.deepEqual(errors(load(['process.max = 5'], STATIC, dynamic, ['pm = ondemand', 'pm.max_children = 50']).result),
      ['process.max (5) must not be less than the total number of children that start initially across all pools (6)'])
    assert.equal(load(['process.max = 6'], STATIC, dynamic, ['pm = ondemand', 'pm.max_children = 50']).result.ok, true)
  })
  it('process.priority must be in [-19, 20], in [global] and in pools', () => {
    assert.deepEqual(errors(load(['process.priority = 21'], STATIC).result), ['process.priority must be included into [-19,20]'])
    assert.deepEqual(errors(loadPool(...STATIC, 'process.priority = -20')), ['[pool www] process.priority must be included into [-19,20]'])
  })
  it('request.max_params_size must be positive', () => {
    assert.deepEqual(errors(loadPool(...STATIC, 'request.max_params_size = 0')), ['[pool www] request.max_params_size must be a positive value'])
  })
})

describe('error details', () => {
  it('carries the code, the pool and the location of the pool section', () => {
    const r = loadPool('pm = static')
    assert.ok(!r.ok)
    const e = r.errors[0]
    assert.equal(e?.code, 'FPM_ERR_CONFIG_POOL')
    assert.equal(e?.pool, 'www')
    assert.equal(e?.location?.line, 2)
  })
})
