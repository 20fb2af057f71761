// Golden test of the -tt dump (src/config/dump.ts): php-fpm's layout (fpm_conf_dump, php-fpm.md
// §3.7) in table order, node-fpm's directives in their places, arrays as name[key] = value.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dumpConfig } from '../../../src/config/dump.ts'
import { loadConfig } from '../../../src/config/load.ts'

let dir: string
before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-dump-'))) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('dumpConfig', () => {
  it('prints [global], each pool, TAB name = value lines and blank separators', () => {
    fs.mkdirSync(path.join(dir, 'app/public'), { recursive: true })
    fs.writeFileSync(path.join(dir, 'fpm.conf'), [
      '[global]',
      'pid = run/fpm.pid',
      'log_level = warn',
      'emergency_restart_interval = 1m',
      'process.priority = -2',
      '[app]',
      'prefix = app',
      'listen = run/$pool.sock',
      'listen.allowed_clients = 127.0.0.1',
      'pm = dynamic',
      'pm.max_children = 5',
      'pm.min_spare_servers = 1',
      'pm.max_spare_servers = 3',
      'pm.heap_limit = 256M',
      'ping.path = /ping',
      'access.log = log/access.log',
      'access.suppress_path[] = /ping',
      'request_terminate_timeout = 1500ms',
      'root = public',
      'user = www-data',
      'env[APP] = $pool',
      'php_flag[display_errors] = off',
      'php_admin_value[memory_limit] = 64M',
      ''
    ].join('\n'))
    const r = loadConfig({ cwd: dir, configFile: 'fpm.conf', env: {} })
    assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
    const app = path.join(dir, 'app')
    assert.deepEqual(dumpConfig(r.config), [
      '[global]',
      `\tpid = ${dir}/run/fpm.pid`,
      '\terror_log = stderr',
      '\tsyslog.ident = php-fpm',
      '\tsyslog.facility = daemon',
      '\tlog_buffering = yes',
      '\tlog_level = WARNING',
      '\tlog_limit = 1024',
      '\temergency_restart_interval = 60s',
      '\temergency_restart_threshold = 0',
      '\tprocess_control_timeout = 0s',
      '\tprocess.max = 0',
      '\tprocess.priority = -2',
      '\tdaemonize = no',
      '\trlimit_files = undefined',
      '\trlimit_core = undefined',
      '\tevents.mechanism = undefined',
      '\tsystemd_interval = 10s',
      '',
      '[app]',
      `\tprefix = ${app}`,
      '\tuser = www-data',
      '\tgroup = undefined',
      '\tlisten = run/app.sock',
      '\tlisten.backlog = 511',
      '\tlisten.acl_users = undefined',
      '\tlisten.acl_groups = undefined',
      '\tlisten.owner = undefined',
      '\tlisten.group = undefined',
      '\tlisten.mode = 0660',
      '\tlisten.allowed_clients = 127.0.0.1',
      '\tlisten.setfib = -1',
      '\tprocess.priority = undefined',
      '\tprocess.dumpable = no',
      '\tpm = dynamic',
      '\tpm.max_children = 5',
      '\tpm.start_servers = 2',
      '\tpm.min_spare_servers = 1',
      '\tpm.max_spare_servers = 3',
      '\tpm.max_spawn_rate = 32',
      '\tpm.process_idle_timeout = 10s',
      '\tpm.max_requests = 0',
      '\tpm.max_requests_jitter = 0',
      '\tpm.thread_concurrency = 1',
      '\tpm.accept = main',
      '\tpm.heap_limit = 256M',
      '\tpm.heap_soft_limit = 192M',
      '\tpm.status_path = undefined',
      '\tpm.status_listen = undefined',
      '\tping.path = /ping',
      '\tping.response = pong',
      `\taccess.log = ${app}/log/access.log`,
      '\taccess.format = %R - %u %t "%m %r" %s',
      '\taccess.suppress_path[] = /ping',
      '\tslowlog = undefined',
      '\trequest_slowlog_timeout = 0s',
      '\trequest_slowlog_trace_depth = 20',
      '\trequest_terminate_timeout = 1500ms',
      '\trequest_terminate_timeout_track_finished = no',
      '\trequest_terminate_timeout_grace = 1s',
      '\trequest.max_params_size = 128K',
      '\trequest.body_buffer_size = 1M',
      '\trequest.body_max_size = 8M',
      '\trequest.body_timeout = 60s',
      '\trequest.queue_max = 160',
      '\trequest.queue_timeout = 30s',
      '\trlimit_files = undefined',
      '\trlimit_core = undefined',
      '\tchroot = undefined',
      '\tchdir = undefined',
      '\tcatch_workers_output = no',
      '\tdecorate_workers_output = yes',
      '\tclear_env = yes',
      '\tsecurity.limit_extensions = .js .mjs .cjs .ts .mts',
      `\troot = ${app}/public`,
      '\thandler = undefined',
      '\tapparmor_hat = undefined',
      '\tenv[APP] = app',
      '\tphp_value[display_errors] = 0',
      '\tphp_admin_value[memory_limit] = 64M',
      ''
    ])
  })
})
