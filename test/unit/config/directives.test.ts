// Table-driven tests of every directive of src/config/directives.ts: values each one accepts
// (checked through the -tt dump, so parse → field → dump round-trips) and values it refuses,
// with the exact `[file:line] unable to parse value for entry ...` line and no other error.
// Also: the table itself (names, docs, notices, field paths) and its notices.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DIRECTIVES, findArrayDirective, findDirective } from '../../../src/config/directives.ts'
import { dumpConfig } from '../../../src/config/dump.ts'
import { getField, loadConfig } from '../../../src/config/load.ts'
import type { LoadResult } from '../../../src/config/load.ts'

let dir: string
let seq = 0
before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-directives-'))) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A fresh prefix with `public/` (holding index.mjs), `sub/public/` and the given files. */
function project (files: Record<string, string>): string {
  const prefix = path.join(dir, `p${++seq}`)
  for (const d of ['public', 'sub/public']) fs.mkdirSync(path.join(prefix, d), { recursive: true })
  fs.writeFileSync(path.join(prefix, 'public/index.mjs'), 'export default { fetch: () => new Response("ok") }\n')
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(prefix, rel)), { recursive: true })
    fs.writeFileSync(path.join(prefix, rel), text)
  }
  return prefix
}

const POOL = ['[www]', 'listen = 127.0.0.1:9000', 'pm = static', 'pm.max_children = 2', 'root = public']

interface Loaded { prefix: string, file: string, line: number, result: LoadResult }

/** The directive line comes last, after `context`, in pools.d/www.conf or in the [global] of fpm.conf. */
function load (scope: 'global' | 'pool', directive: string, context: readonly string[] = []): Loaded {
  const line = directive.replaceAll('{dir}', path.join(dir, `p${seq + 1}`))
  if (scope === 'pool') {
    const lines = [...POOL, ...context, line]
    const prefix = project({ 'pools.d/www.conf': lines.join('\n') + '\n' })
    return { prefix, file: path.join(prefix, 'pools.d/www.conf'), line: lines.length, result: loadConfig({ cwd: prefix, env: {} }) }
  }
  const lines = ['[global]', ...context, line, ...POOL]
  const prefix = project({ 'fpm.conf': lines.join('\n') + '\n' })
  return { prefix, file: path.join(prefix, 'fpm.conf'), line: context.length + 2, result: loadConfig({ cwd: prefix, configFile: 'fpm.conf', env: {} }) }
}

/** The dump lines of one section. */
function section (lines: string[], name: string): string[] {
  const start = lines.indexOf(`[${name}]`)
  const end = lines.indexOf('', start)
  return lines.slice(start + 1, end)
}

interface Case {
  readonly accept?: ReadonlyArray<readonly [string, string]>
  readonly reject?: ReadonlyArray<readonly [string, string]>
  readonly context?: readonly string[]
}

const INT_REASON = 'is not a valid number (greater or equal than zero)'
const BOOL_REASON = 'invalid boolean value'
const TIME_SUFFIX = 'unknown suffix used in time value'
const DYNAMIC = ['pm = dynamic', 'pm.max_children = 10', 'pm.min_spare_servers = 1', 'pm.max_spare_servers = 5']

// {dir} stands for the prefix of the test's project.
const GLOBAL_CASES: Record<string, Case> = {
  pid: { accept: [['run/fpm.pid', '{dir}/run/fpm.pid'], ['/var/run/x.pid', '/var/run/x.pid']], reject: [['$pool.pid', "Can't use '$pool' when the pool is not defined"]] },
  error_log: {
    accept: [['stderr', 'stderr'], ['log/error.log', '{dir}/log/error.log'], ['/dev/stderr', '/dev/stderr']],
    reject: [['syslog', "'syslog' is not supported: keep the default stderr (journald or the supervisor collects it) or give a file"]]
  },
  'syslog.ident': { accept: [['node-fpm', 'node-fpm']] },
  'syslog.facility': { accept: [['LOCAL0', 'local0'], ['daemon', 'daemon']], reject: [['mars', 'invalid value']] },
  log_buffering: { accept: [['no', 'no'], ['yes', 'yes']], reject: [['2', BOOL_REASON]] },
  log_level: {
    accept: [['warn', 'WARNING'], ['Debug', 'DEBUG'], ['alert', 'ALERT'], ['error', 'ERROR'], ['notice', 'NOTICE']],
    reject: [['verbose', "invalid value for 'log_level'"]]
  },
  log_limit: { accept: [['4096', '4096'], ['512', '512']], reject: [['4k', INT_REASON]] },
  emergency_restart_interval: { accept: [['1m', '60s'], ['30', '30s']], reject: [['1w', TIME_SUFFIX]] },
  emergency_restart_threshold: { accept: [['10', '10']], reject: [['ten', INT_REASON]] },
  process_control_timeout: { accept: [['10s', '10s'], ['500ms', '500ms']], reject: [['', 'invalid time value']] },
  'process.max': { accept: [['128', '128']], reject: [['1.5', INT_REASON]] },
  'process.priority': { accept: [['-5', '-5'], ['20', '20']], reject: [['high', INT_REASON]] },
  daemonize: { accept: [['yes', 'yes'], ['no', 'no']], reject: [['sometimes', BOOL_REASON]] },
  rlimit_files: { accept: [['1024', '1024']], reject: [['many', INT_REASON]] },
  rlimit_core: { accept: [['unlimited', 'unlimited'], ['0', '0']], reject: [['-1', "must be greater than zero or 'unlimited'"], ['x', INT_REASON]] },
  'events.mechanism': { accept: [['epoll', 'epoll']] },
  systemd_interval: { accept: [['0', '0s'], ['1h', '3600s']], reject: [['1y', TIME_SUFFIX]] }
}

const POOL_CASES: Record<string, Case> = {
  prefix: { accept: [['sub', '{dir}/sub'], ['{dir}/sub', '{dir}/sub']] },
  user: { accept: [['www-data', 'www-data']] },
  group: { accept: [['www-data', 'www-data']] },
  listen: { accept: [['127.0.0.1:9001', '127.0.0.1:9001'], ['9001', '9001'], ['[::1]:9001', '[::1]:9001'], ['/tmp/$pool.sock', '/tmp/www.sock']] },
  'listen.backlog': { accept: [['-1', '-1'], ['1024', '1024']], reject: [['lots', INT_REASON]] },
  'listen.acl_users': { accept: [['www-data,nginx', 'www-data,nginx']] },
  'listen.acl_groups': { accept: [['www-data', 'www-data']] },
  'listen.owner': { accept: [['www-data', 'www-data']] },
  'listen.group': { accept: [['www-data', 'www-data']] },
  'listen.mode': { accept: [['0666', '0666'], ['660', '0660']], reject: [['0999', 'invalid octal mode'], ['rw', 'invalid octal mode']] },
  'listen.allowed_clients': { accept: [['127.0.0.1, ::1', '127.0.0.1,::1']] },
  'listen.setfib': { accept: [['2', '2']], reject: [['x', INT_REASON]] },
  'process.priority': { accept: [['-19', '-19']], reject: [['nice', INT_REASON]] },
  'process.dumpable': { accept: [['yes', 'yes']], reject: [['2', BOOL_REASON]] },
  pm: {
    accept: [['STATIC', 'static'], ['ondemand', 'ondemand'], ['dynamic', 'dynamic']],
    reject: [['fork', 'invalid process manager (static, dynamic or ondemand)']],
    context: ['pm.min_spare_servers = 1', 'pm.max_spare_servers = 2']
  },
  'pm.max_children': { accept: [['8', '8']], reject: [['1.5', INT_REASON]] },
  'pm.start_servers': { accept: [['3', '3']], reject: [['x', INT_REASON]], context: DYNAMIC },
  'pm.min_spare_servers': { accept: [['2', '2']], reject: [['x', INT_REASON]], context: DYNAMIC },
  'pm.max_spare_servers': { accept: [['4', '4']], reject: [['x', INT_REASON]], context: DYNAMIC },
  // pm-max-spawn-rate-config.phpt
  'pm.max_spawn_rate': { accept: [['64', '64']], reject: [['fast', INT_REASON]], context: DYNAMIC },
  'pm.process_idle_timeout': { accept: [['5m', '300s'], ['1500ms', '1500ms'], ['7', '7s']], reject: [['5x', TIME_SUFFIX], ['', 'invalid time value']] },
  'pm.max_requests': { accept: [['500', '500']], reject: [['abc', INT_REASON]] },
  'pm.max_requests_jitter': { accept: [['50', '50'], ['0', '0']], reject: [['some', INT_REASON]] },
  'pm.thread_concurrency': { accept: [['8', '8']], reject: [['two', INT_REASON]] },
  'pm.accept': { accept: [['threads', 'threads'], ['Main', 'main']], reject: [['processes', 'invalid value (main or threads)']] },
  'pm.heap_limit': {
    accept: [['256M', '256M'], ['256m', '256M'], ['1G', '1G'], ['0', '0'], ['1000K', '1M']],
    reject: [['12X', 'unknown suffix used in size value'], ['-1', 'invalid size value']]
  },
  'pm.heap_soft_limit': {
    accept: [['32M', '32M'], ['0', '0'], ['1500K', '1500K']],
    reject: [['lots', 'invalid size value']]
  },
  'pm.status_path': { accept: [['/status', '/status'], ['/$pool-status', '/www-status']] },
  'pm.status_listen': { accept: [['127.0.0.1:9001', '127.0.0.1:9001']] },
  'ping.path': { accept: [['/ping', '/ping']] },
  'ping.response': { accept: [['alive', 'alive'], ['"yes"', 'yes'], ['yes', '1']], context: ['ping.path = /ping'] },
  'access.log': { accept: [['log/$pool.log', '{dir}/log/www.log'], ['/var/log/a.log', '/var/log/a.log']] },
  'access.format': { accept: [['"%R %s"', '%R %s']] },
  slowlog: { accept: [['slow.log', '{dir}/slow.log']] },
  request_slowlog_timeout: { accept: [['5', '5s']], reject: [['soon', 'invalid time value']], context: ['slowlog = s.log'] },
  request_slowlog_trace_depth: { accept: [['10', '10']], reject: [['ten', INT_REASON]], context: ['slowlog = s.log'] },
  request_terminate_timeout: { accept: [['30', '30s'], ['2m', '120s'], ['250ms', '250ms']], reject: [['1.5m', 'invalid time value']] },
  request_terminate_timeout_track_finished: { accept: [['on', 'yes']], reject: [['maybe', BOOL_REASON]] },
  request_terminate_timeout_grace: { accept: [['0', '0s'], ['500ms', '500ms'], ['2', '2s']], reject: [['-1', 'invalid time value']] },
  'request.max_params_size': { accept: [['64K', '64K'], ['1000', '1000']], reject: [['big', 'invalid size value']] },
  'request.body_buffer_size': { accept: [['0', '0'], ['1m', '1M']], reject: [['1.5M', 'invalid size value']] },
  'request.body_max_size': { accept: [['0', '0'], ['100M', '100M']], reject: [['100MB', 'unknown suffix used in size value']] },
  'request.body_timeout': { accept: [['0', '0s'], ['30', '30s'], ['1500ms', '1500ms']], reject: [['soon', 'invalid time value']] },
  'request.queue_max': { accept: [['0', '0'], ['1000', '1000']], reject: [['lots', INT_REASON]] },
  'request.queue_timeout': { accept: [['5', '5s'], ['250ms', '250ms'], ['2m', '120s']], reject: [['1.5s', 'invalid time value']] },
  rlimit_files: { accept: [['4096', '4096']], reject: [['many', INT_REASON]] },
  rlimit_core: { accept: [['unlimited', 'unlimited'], ['UNLIMITED', 'unlimited']], reject: [['-2', "must be greater than zero or 'unlimited'"]] },
  chroot: { accept: [['/srv/$pool', '/srv/www']] },
  chdir: { accept: [['/', '/']] },
  catch_workers_output: { accept: [['yes', 'yes']], reject: [['2', BOOL_REASON]] },
  decorate_workers_output: { accept: [['no', 'no']], reject: [['2', BOOL_REASON]] },
  clear_env: { accept: [['no', 'no'], ['"off"', 'no'], ['0', 'no'], ['On', 'yes']], reject: [['2', BOOL_REASON]] },
  'security.limit_extensions': { accept: [['.mjs  .js', '.mjs .js'], ['""', '']] },
  root: { accept: [['public', '{dir}/public'], ['{dir}/sub/public', '{dir}/sub/public']] },
  handler: { accept: [['index.mjs', '{dir}/public/index.mjs'], ['{dir}/public/index.mjs', '{dir}/public/index.mjs']] },
  apparmor_hat: { accept: [['node-fpm', 'node-fpm']] }
}

function runCases (scope: 'global' | 'pool', cases: Record<string, Case>): void {
  for (const [name, c] of Object.entries(cases)) {
    const d = findDirective(scope, name)
    describe(`${scope} ${name}`, () => {
      it('is in the table', () => assert.ok(d))
      for (const [raw, dumped] of c.accept ?? []) {
        it(`accepts ${name} = ${raw}`, () => {
          const loaded = load(scope, `${name} = ${raw}`, c.context)
          const expected = `\t${name} = ${dumped.replaceAll('{dir}', loaded.prefix)}`
          assert.ok(loaded.result.ok, loaded.result.ok ? '' : loaded.result.errors.map(e => e.message).join('\n'))
          const lines = section(dumpConfig(loaded.result.config), scope === 'global' ? 'global' : 'www')
          assert.ok(lines.includes(expected), `${expected} not in\n${lines.join('\n')}`)
          const expectNotice = d?.notice !== null && !(name === 'daemonize' && dumped === 'no')
          const noticed = loaded.result.notices.some(n => n.message === `[${loaded.file}:${loaded.line}] '${d?.name ?? ''}' ${d?.notice ?? ''}`)
          assert.equal(noticed, expectNotice, JSON.stringify(loaded.result.notices))
        })
      }
      for (const [raw, reason] of c.reject ?? []) {
        it(`refuses ${name} = ${raw}`, () => {
          const loaded = load(scope, `${name} = ${raw}`, c.context)
          assert.equal(loaded.result.ok, false)
          if (loaded.result.ok) return
          assert.deepEqual(loaded.result.errors.map(e => [e.code, e.message]), [
            ['FPM_ERR_CONFIG_VALUE', `[${loaded.file}:${loaded.line}] unable to parse value for entry '${name}': ${reason}`]
          ])
        })
      }
    })
  }
}

runCases('global', GLOBAL_CASES)
runCases('pool', POOL_CASES)

describe('the directive table', () => {
  it('has a test case for every scalar directive', () => {
    for (const d of DIRECTIVES) {
      if (d.kind === 'array' || d.kind === 'include') continue
      const cases = d.scope === 'global' ? GLOBAL_CASES : POOL_CASES
      assert.ok(cases[d.name]?.accept !== undefined, `no test case for ${d.scope} ${d.name}`)
    }
  })

  it('has unique names per scope, a doc for each, and a notice text exactly for notice directives', () => {
    const seen = new Set<string>()
    for (const d of DIRECTIVES) {
      const key = `${d.scope} ${d.name}`
      assert.ok(!seen.has(key), `duplicate ${key}`)
      seen.add(key)
      assert.ok(d.doc.length > 10, `${key} has no doc`)
      assert.equal(d.notice !== null, d.status === 'notice', key)
      assert.equal(d.name, d.name.toLowerCase(), `${key} is not lower case`)
    }
  })

  it('holds every php-fpm global and pool directive (php-fpm.md §1, §2.1)', () => {
    const global = ['pid', 'error_log', 'syslog.ident', 'syslog.facility', 'log_level', 'log_limit', 'log_buffering',
      'emergency_restart_threshold', 'emergency_restart_interval', 'process_control_timeout', 'process.max',
      'process.priority', 'daemonize', 'rlimit_files', 'rlimit_core', 'events.mechanism', 'systemd_interval']
    const pool = ['prefix', 'user', 'group', 'listen', 'listen.backlog', 'listen.owner', 'listen.group', 'listen.mode',
      'listen.acl_users', 'listen.acl_groups', 'listen.allowed_clients', 'listen.setfib', 'process.priority',
      'process.dumpable', 'pm', 'pm.max_children', 'pm.start_servers', 'pm.min_spare_servers', 'pm.max_spare_servers',
      'pm.max_spawn_rate', 'pm.process_idle_timeout', 'pm.max_requests', 'pm.status_path', 'pm.status_listen',
      'ping.path', 'ping.response', 'access.log', 'access.format', 'slowlog', 'request_slowlog_timeout',
      'request_slowlog_trace_depth', 'request_terminate_timeout', 'request_terminate_timeout_track_finished',
      'rlimit_files', 'rlimit_core', 'chroot', 'chdir', 'catch_workers_output', 'decorate_workers_output', 'clear_env',
      'security.limit_extensions', 'apparmor_hat']
    for (const name of global) assert.ok(findDirective('global', name), `global ${name}`)
    for (const name of pool) assert.ok(findDirective('pool', name), `pool ${name}`)
    for (const name of ['env', 'php_value', 'php_flag', 'php_admin_value', 'php_admin_flag', 'access.suppress_path']) {
      assert.ok(findArrayDirective(name), name)
    }
    assert.ok(DIRECTIVES.some(d => d.name === 'include'))
  })

  it('matches scalar names case-insensitively and array names exactly', () => {
    assert.equal(findDirective('pool', 'PM.Max_Children')?.name, 'pm.max_children')
    assert.equal(findDirective('global', 'pm.max_children'), undefined)
    assert.equal(findArrayDirective('ENV'), undefined)
  })

  it('maps every field to a defined value of a loaded config', () => {
    const loaded = load('pool', 'pm.max_requests = 1')
    assert.ok(loaded.result.ok)
    const { global, pools } = loaded.result.config
    for (const d of DIRECTIVES) {
      if (d.field === null) continue
      const source = d.scope === 'global' ? global : pools[0]
      assert.notEqual(getField(source ?? {}, d.field), undefined, `${d.scope} ${d.name} -> ${d.field}`)
    }
  })
})
