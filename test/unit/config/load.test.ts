// Tests of loadConfig (src/config/load.ts): sections and scopes, arrays (php's config-array*
// tests), $pool and ${ENV} expansion, the prefix and relative paths (main-global-prefix,
// pool-prefix), root/handler, the php_value mappings, include order, every error collected,
// and the frozen result.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig } from '../../../src/config/load.ts'
import type { LoadOptions, LoadResult } from '../../../src/config/load.ts'
import type { FpmConfig, PoolConfig } from '../../../src/config/types.ts'
import { dumpConfig } from '../../../src/config/dump.ts'

let dir: string
let seq = 0
before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-load-'))) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A fresh prefix with `public/index.mjs` and the given files ({dir} in them = the prefix). */
function project (files: Record<string, string> = {}): string {
  const prefix = path.join(dir, `p${++seq}`)
  fs.mkdirSync(path.join(prefix, 'public'), { recursive: true })
  fs.writeFileSync(path.join(prefix, 'public/index.mjs'), 'export default { fetch: () => new Response("ok") }\n')
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(prefix, rel)), { recursive: true })
    fs.writeFileSync(path.join(prefix, rel), text.replaceAll('{dir}', prefix))
  }
  return prefix
}

const BASE = ['listen = 127.0.0.1:9000', 'pm = static', 'pm.max_children = 2', 'root = public']
const www = (...lines: string[]) => ['[www]', ...BASE, ...lines].join('\n') + '\n'

function load (files: Record<string, string>, opts: Partial<LoadOptions> = {}): { prefix: string, result: LoadResult } {
  const prefix = project(files)
  return { prefix, result: loadConfig({ cwd: prefix, env: {}, ...opts }) }
}

function config (r: LoadResult): FpmConfig {
  assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
  return r.config
}

function pool (r: LoadResult, index = 0): PoolConfig {
  const p = config(r).pools[index]
  assert.ok(p)
  return p
}

function errors (r: LoadResult): string[] {
  assert.equal(r.ok, false, 'expected errors')
  return r.ok ? [] : r.errors.map(e => e.message)
}

describe('sources of pools', () => {
  it('reads <cwd>/pools.d/*.conf without -y, in order, with an empty [global]', () => {
    const { prefix, result } = load({
      'pools.d/b.conf': www().replace('[www]', '[b]').replace(':9000', ':9002'),
      'pools.d/a.conf': www().replace('[www]', '[a]').replace(':9000', ':9001'),
      'pools.d/readme.txt': 'not a pool'
    })
    const c = config(result)
    assert.equal(c.file, null)
    assert.equal(c.prefix, prefix)
    assert.deepEqual(c.pools.map(p => p.name), ['a', 'b'])
    assert.equal(c.pools[0]?.file, path.join(prefix, 'pools.d/a.conf'))
    assert.equal(c.pools[0]?.line, 1)
    assert.equal(c.global.logLevel, 'notice')
  })

  it('uses -p as the prefix, relative to cwd, and pools.d under it', () => {
    const prefix = project({ 'srv/pools.d/www.conf': www(), 'srv/public/x.mjs': '' })
    const c = config(loadConfig({ cwd: prefix, prefix: 'srv', env: {} }))
    assert.equal(c.prefix, path.join(prefix, 'srv'))
    assert.equal(c.pools[0]?.root, path.join(prefix, 'srv/public'))
  })

  it("refuses a -p that is not a directory with php's message", () => {
    const prefix = project()
    assert.deepEqual(errors(loadConfig({ cwd: prefix, prefix: 'nope', env: {} })),
      [`the global prefix '${path.join(prefix, 'nope')}' does not exist or is not a directory`])
  })

  it('reads -y relative to cwd; its include pulls the pools (bug68391-conf-include-order)', () => {
    const files: Record<string, string> = { 'etc/fpm.conf': '[global]\nlog_level = debug\ninclude = etc/pool.d/*.conf\n' }
    for (const [i, name] of ['e', 'a', 'c', 'b', 'd'].entries()) {
      files[`etc/pool.d/${name}.conf`] = `[${name}]\nlisten = 127.0.0.1:${9100 + i}\npm = static\npm.max_children = 1\nroot = public\n`
    }
    const { prefix, result } = load(files, { configFile: 'etc/fpm.conf' })
    const c = config(result)
    assert.equal(c.file, path.join(prefix, 'etc/fpm.conf'))
    assert.equal(c.global.logLevel, 'debug')
    assert.deepEqual(c.pools.map(p => p.name), ['a', 'b', 'c', 'd', 'e'])
  })

  it('says when -y cannot be opened, and nothing else', () => {
    const { prefix, result } = load({}, { configFile: 'none.conf' })
    assert.deepEqual(errors(result), [`failed to open configuration file '${path.join(prefix, 'none.conf')}': No such file or directory (2)`])
  })

  it('needs a pool: "No pool defined..." (with the include warning)', () => {
    const { prefix, result } = load({})
    assert.deepEqual(errors(result), ['No pool defined. at least one pool section must be specified in config file'])
    assert.deepEqual(result.notices, [{ level: 'warning', message: `Nothing matches the include pattern '${path.join(prefix, 'pools.d/*.conf')}'.` }])
  })
})

describe('sections and scopes', () => {
  it('re-opens a pool by name, case-insensitively, and [global] in between', () => {
    const r = load({
      'fpm.conf': `${www()}[global]\nlog_level = warning\n[WWW]\npm.max_children = 7\n`
    }, { configFile: 'fpm.conf' }).result
    assert.equal(config(r).pools.length, 1)
    assert.equal(pool(r).name, 'www')
    assert.equal(pool(r).pm.maxChildren, 7)
    assert.equal(config(r).global.logLevel, 'warning')
  })

  it('treats directives before any section as global', () => {
    const r = load({ 'fpm.conf': `log_limit = 2048\n${www()}` }, { configFile: 'fpm.conf' }).result
    assert.equal(config(r).global.logLimit, 2048)
  })

  it('matches scalar names case-insensitively', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': www('PM.Max_Requests = 9') }).result).pm.maxRequests, 9)
  })

  it("says unknown entry for an unknown scalar, a pool directive in [global], and 'INCLUDE'", () => {
    const { prefix, result } = load({ 'fpm.conf': `[global]\npm = static\nINCLUDE = x\n${www('pm.foo = 1')}` }, { configFile: 'fpm.conf' })
    const f = path.join(prefix, 'fpm.conf')
    assert.deepEqual(errors(result), [
      `[${f}:2] unknown entry 'pm'`,
      `[${f}:3] unknown entry 'INCLUDE'`,
      `[${f}:9] unknown entry 'pm.foo'`
    ])
    assert.ok(!result.ok && result.errors.every(e => e.code === 'FPM_ERR_CONFIG_UNKNOWN_DIRECTIVE'))
  })

  it('accepts # comments (a node-fpm convenience)', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': `# pool\n${www('# pm.max_requests = 5')}` }).result).pm.maxRequests, 0)
  })

  it('keeps the later of two values', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': www('pm.max_children = 3', 'pm.max_children = 4') }).result).pm.maxChildren, 4)
  })
})

describe('arrays (config-array*.phpt)', () => {
  it('config-array: env, php_value, php_flag as 1/0, admin values, access.suppress_path[] in the dump', () => {
    const r = load({
      'pools.d/www.conf': www(
        'access.suppress_path[] = /ping',
        'access.suppress_path[] = /health',
        'php_value[error_reporting] = E_ALL',
        'php_flag[display_errors] = on',
        'php_flag[html_errors] = off',
        'php_admin_flag[log_errors] = yes',
        'php_admin_value[error_log] = /var/log/php.log',
        'env[APP_ENV] = production'
      )
    }).result
    const p = pool(r)
    assert.deepEqual(p.phpValues, { error_reporting: 'E_ALL', display_errors: '1', html_errors: '0' })
    assert.deepEqual(p.phpAdminValues, { log_errors: '1', error_log: '/var/log/php.log' })
    assert.deepEqual(p.env, { APP_ENV: 'production' })
    assert.deepEqual(p.access.suppressPaths, ['/ping', '/health'])
    const dump = dumpConfig(config(r))
    for (const line of ['\taccess.suppress_path[] = /ping', '\taccess.suppress_path[] = /health', '\tphp_value[error_reporting] = E_ALL',
      '\tphp_value[display_errors] = 1', '\tphp_value[html_errors] = 0', '\tphp_admin_value[log_errors] = 1', '\tenv[APP_ENV] = production']) {
      assert.ok(dump.includes(line), line)
    }
  })

  const refused: Array<[string, string]> = [
    // config-array-validation-php-value-key
    ['php_value[] = E_ALL', "You must provide a key for field 'php_value'"],
    ['env[] = x', "You must provide a key for field 'env'"],
    // config-array-validation-suppress-path-key(-2)
    ['access.suppress_path[pingpath] = /ping', "Keys provided to field 'access.suppress_path' are ignored"],
    ['access.suppress_path[/] = /ping', "Keys provided to field 'access.suppress_path' are ignored"],
    // config-array-validation-suppress-path-starts-slash
    ['access.suppress_path[] = ping', "Values provided to field 'access.suppress_path' must begin with '/'"],
    ['env[X] =', 'empty value'],
    ['foo[bar] = 1', "unknown directive 'foo'"],
    ['ENV[X] = 1', "unknown directive 'ENV'"],
    ['php_flag[display_errors] = 2', "error while parsing 'php_flag[display_errors]' : invalid boolean value"],
    ['php_value[memory_limit] = lots', "error while parsing 'php_value[memory_limit]' : invalid size value"],
    ['php_admin_value[post_max_size] = 8MB', "error while parsing 'php_admin_value[post_max_size]' : unknown suffix used in size value"],
    ['php_admin_value[max_execution_time] = -5', "error while parsing 'php_admin_value[max_execution_time]' : is not a valid number (greater or equal than zero)"]
  ]
  for (const [line, message] of refused) {
    it(`refuses ${line}`, () => {
      const { prefix, result } = load({ 'pools.d/www.conf': www(line) })
      assert.deepEqual(errors(result), [`[${path.join(prefix, 'pools.d/www.conf')}:6] ${message}`])
    })
  }

  it('reports both mistakes of access.suppress_path[key] = value', () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('access.suppress_path[k] = v') })
    const at = `[${path.join(prefix, 'pools.d/www.conf')}:6]`
    assert.deepEqual(errors(result), [
      `${at} Keys provided to field 'access.suppress_path' are ignored`,
      `${at} Values provided to field 'access.suppress_path' must begin with '/'`
    ])
  })

  it('refuses arrays in [global]', () => {
    const { prefix, result } = load({ 'fpm.conf': `[global]\nenv[X] = 1\n${www()}` }, { configFile: 'fpm.conf' })
    assert.deepEqual(errors(result), [`[${path.join(prefix, 'fpm.conf')}:2] Array are not allowed in the global section`])
  })
})

describe('$pool and ${ENV}', () => {
  it('replaces $pool in string values and array values of a pool', () => {
    const r = load({
      'pools.d/www.conf': www('listen = /tmp/fpm-$pool.sock', 'env[POOL] = $pool', 'php_value[session.name] = "s_$pool"', 'access.log = log/$pool.log')
    })
    const p = pool(r.result)
    assert.equal(p.listen.address, '/tmp/fpm-www.sock')
    assert.deepEqual(p.listen.target, { kind: 'unix', path: '/tmp/fpm-www.sock' })
    assert.equal(p.env.POOL, 'www')
    assert.equal(p.phpValues['session.name'], 's_www')
    assert.equal(p.access.log, path.join(r.prefix, 'log/www.log'))
  })

  it("refuses $pool in [global]: Can't use '$pool' when the pool is not defined", () => {
    const { prefix, result } = load({ 'fpm.conf': `[global]\nerror_log = log/$pool.log\n${www()}` }, { configFile: 'fpm.conf' })
    assert.deepEqual(errors(result), [`[${path.join(prefix, 'fpm.conf')}:2] unable to parse value for entry 'error_log': Can't use '$pool' when the pool is not defined`])
  })

  it('expands ${X}, ${X:-default}, quoted and bare, from the given env only', () => {
    const env = { PORT: '9555', MAX: '6', CLEAR: 'no', HOST_NAME: 'web1' }
    const r = load({
      'pools.d/www.conf': www(
        'listen = 127.0.0.1:${PORT}', 'pm.max_children = ${MAX}', 'clear_env = ${CLEAR}',
        'pm.max_requests = ${REQS:-250}', 'env[GREETING] = "hello ${HOST_NAME:-nobody}"', "env[RAW] = 'port ${PORT}'",
        'env[MISSING] = x${NOT_SET}y'
      )
    }, { env }).result
    const p = pool(r)
    assert.equal(p.listen.address, '127.0.0.1:9555')
    assert.equal(p.pm.maxChildren, 6)
    assert.equal(p.clearEnv, false)
    assert.equal(p.pm.maxRequests, 250)
    assert.deepEqual(p.env, { GREETING: 'hello web1', RAW: 'port ${PORT}', MISSING: 'xy' })
  })

  it("copies the server's variable for env[X] = $NAME ('' when unset), after $pool", () => {
    const r = load({ 'pools.d/www.conf': www('env[P] = $PATH', 'env[N] = $NOPE', 'env[Q] = $pool') }, { env: { PATH: '/usr/bin' } }).result
    assert.deepEqual(pool(r).env, { P: '/usr/bin', N: '', Q: 'www' })
  })
})

describe('prefix and paths (main-global-prefix, pool-prefix)', () => {
  it('resolves pid, error_log, access.log, slowlog and unix listen against the prefix', () => {
    const r = load({
      'fpm.conf': `[global]\npid = run/fpm.pid\nerror_log = log/error.log\n${www('listen = run/www.sock', 'access.log = log/access.log', 'slowlog = log/slow.log')}`
    }, { configFile: 'fpm.conf' })
    const c = config(r.result)
    assert.equal(c.global.pid, path.join(r.prefix, 'run/fpm.pid'))
    assert.equal(c.global.errorLog, path.join(r.prefix, 'log/error.log'))
    const p = pool(r.result)
    assert.equal(p.access.log, path.join(r.prefix, 'log/access.log'))
    assert.equal(p.access.format, '%R - %u %t "%m %r" %s')
    assert.equal(p.slowlog.file, path.join(r.prefix, 'log/slow.log'))
    assert.deepEqual(p.listen.target, { kind: 'unix', path: path.join(r.prefix, 'run/www.sock') })
    assert.equal(p.listen.address, 'run/www.sock')
  })

  it("applies a pool's prefix to its paths, not to the global pid and error_log", () => {
    const r = load({
      'fpm.conf': `[global]\npid = fpm.pid\nerror_log = error.log\n${www('prefix = pool', 'access.log = access.log', 'slowlog = slow.log')}`,
      'pool/public/index.mjs': ''
    }, { configFile: 'fpm.conf' })
    const c = config(r.result)
    const p = pool(r.result)
    assert.equal(c.global.pid, path.join(r.prefix, 'fpm.pid'))
    assert.equal(c.global.errorLog, path.join(r.prefix, 'error.log'))
    assert.equal(p.prefix, path.join(r.prefix, 'pool'))
    assert.equal(p.access.log, path.join(r.prefix, 'pool/access.log'))
    assert.equal(p.slowlog.file, path.join(r.prefix, 'pool/slow.log'))
    assert.equal(p.root, path.join(r.prefix, 'pool/public'))
  })

  it("refuses a pool prefix that is not a directory with php's message", () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('prefix = nope') })
    assert.deepEqual(errors(result), [
      `[pool www] the prefix '${path.join(prefix, 'nope')}' does not exist or is not a directory`,
      `[pool www] the root '${path.join(prefix, 'nope/public')}' does not exist or is not a directory`
    ])
  })

  it("keeps error_log = stderr as a keyword (the default) and '' as unset", () => {
    const c = config(load({ 'pools.d/www.conf': www('access.log =') }).result)
    assert.equal(c.global.errorLog, 'stderr')
    assert.equal(c.global.pid, null)
    assert.equal(c.pools[0]?.access.log, null)
    assert.equal(c.pools[0]?.access.format, null)
  })
})

describe('root and handler', () => {
  it('needs one of them', () => {
    const r = load({ 'pools.d/www.conf': '[www]\nlisten = 9000\npm = static\npm.max_children = 1\n' }).result
    assert.deepEqual(errors(r), ["[pool www] 'root' or 'handler' must be set"])
  })

  it('stores the real path of root', () => {
    const prefix = project({ 'pools.d/www.conf': www('root = link') })
    fs.symlinkSync(path.join(prefix, 'public'), path.join(prefix, 'link'))
    assert.equal(pool(loadConfig({ cwd: prefix, env: {} })).root, path.join(prefix, 'public'))
  })

  it('resolves handler against root, else against the prefix', () => {
    const a = load({ 'pools.d/www.conf': www('handler = index.mjs') })
    assert.equal(pool(a.result).handler, path.join(a.prefix, 'public/index.mjs'))
    const b = load({ 'pools.d/www.conf': '[www]\nlisten = 9000\npm = static\npm.max_children = 1\nhandler = public/index.mjs\n' })
    assert.equal(pool(b.result).root, null)
    assert.equal(pool(b.result).handler, path.join(b.prefix, 'public/index.mjs'))
  })

  it('refuses a missing root or handler, or a handler that is a directory', () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('root = nope', 'handler = app.mjs') })
    assert.deepEqual(errors(result), [
      `[pool www] the root '${path.join(prefix, 'nope')}' does not exist or is not a directory`,
      `[pool www] the handler '${path.join(prefix, 'nope/app.mjs')}' does not exist or is not a file`
    ])
    const dirHandler = load({ 'pools.d/www.conf': www('handler = .') })
    assert.deepEqual(errors(dirHandler.result), [`[pool www] the handler '${path.join(dirHandler.prefix, 'public')}' does not exist or is not a file`])
  })
})

describe('php_value mappings', () => {
  it('memory_limit sets pm.heap_limit (MB, rounded up; -1 = 0), admin wins, pm.heap_limit wins over both', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[memory_limit] = 128M') }).result).heapLimitMb, 128)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[memory_limit] = 1G') }).result).heapLimitMb, 1024)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[memory_limit] = 1500K') }).result).heapLimitMb, 2)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_admin_value[memory_limit] = -1') }).result).heapLimitMb, 0)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_admin_value[memory_limit] = 64M', 'php_value[memory_limit] = 256M') }).result).heapLimitMb, 64)
    assert.equal(pool(load({ 'pools.d/www.conf': www('pm.heap_limit = 512M', 'php_admin_value[memory_limit] = 64M') }).result).heapLimitMb, 512)
    assert.equal(pool(load({ 'pools.d/www.conf': www() }).result).heapLimitMb, 0)
  })

  it('post_max_size sets request.body_max_size; upload_max_filesize does not', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[post_max_size] = 2M') }).result).request.bodyMaxBytes, 2 * 1024 * 1024)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_admin_value[post_max_size] = 0') }).result).request.bodyMaxBytes, 0)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[upload_max_filesize] = 100M') }).result).request.bodyMaxBytes, 8 * 1024 * 1024)
    assert.equal(pool(load({ 'pools.d/www.conf': www('request.body_max_size = 1M', 'php_admin_value[post_max_size] = 50M') }).result).request.bodyMaxBytes, 1024 * 1024)
  })

  it('max_execution_time sets request_terminate_timeout unless it is written', () => {
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_admin_value[max_execution_time] = 30') }).result).request.terminateTimeoutMs, 30_000)
    assert.equal(pool(load({ 'pools.d/www.conf': www('php_value[max_execution_time] = 5') }).result).request.terminateTimeoutMs, 5000)
    assert.equal(pool(load({ 'pools.d/www.conf': www('request_terminate_timeout = 0', 'php_admin_value[max_execution_time] = 30') }).result).request.terminateTimeoutMs, 0)
  })
})

describe('every error is collected', () => {
  it('a file with 3 mistakes yields 3 errors', () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('listen = 127.0.0.1:69002', 'pm.foo = 1', 'clear_env = maybe') })
    const f = path.join(prefix, 'pools.d/www.conf')
    assert.deepEqual(errors(result), [
      `[${f}:7] unknown entry 'pm.foo'`,
      `[${f}:8] unable to parse value for entry 'clear_env': invalid boolean value`,
      "[pool www] invalid port value '69002'"
    ])
  })

  it('errors from several files, pools and the global section come together', () => {
    const { prefix, result } = load({
      'fpm.conf': '[global]\nlog_limit = 64\nlog_level = loud\ninclude = pools/*.conf\n',
      'pools/a.conf': '[a]\nlisten = 9000\npm = static\npm.max_children = 0\nroot = public\n',
      'pools/b.conf': '[b]\nlisten = 9000\npm = dynamic\npm.max_children = 2\npm.min_spare_servers = 3\npm.max_spare_servers = 3\nroot = public\n'
    }, { configFile: 'fpm.conf' })
    assert.deepEqual(errors(result), [
      `[${path.join(prefix, 'fpm.conf')}:3] unable to parse value for entry 'log_level': invalid value for 'log_level'`,
      'log_limit must be greater than 512',
      '[pool a] pm.max_children must be a positive value',
      '[pool b] pm.min_spare_servers(3) and pm.max_spare_servers(3) cannot be greater than pm.max_children(2)',
      "[pool b] unable to set listen address as it's already used in another pool 'a'"
    ])
  })

  it('does not add a follow-up error for a value that failed to parse', () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('pm.max_children = many', 'pm = fork') })
    const f = path.join(prefix, 'pools.d/www.conf')
    assert.deepEqual(errors(result), [
      `[${f}:6] unable to parse value for entry 'pm.max_children': is not a valid number (greater or equal than zero)`,
      `[${f}:7] unable to parse value for entry 'pm': invalid process manager (static, dynamic or ondemand)`
    ])
  })
})

describe('the result', () => {
  it('is deeply frozen', () => {
    const c = config(load({ 'pools.d/www.conf': www('env[A] = 1') }).result)
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.global) && Object.isFrozen(c.pools))
    const p = c.pools[0] as PoolConfig
    for (const part of [p, p.listen, p.listen.target, p.pm, p.request, p.env, p.limitExtensions, p.access.suppressPaths, p.ignored]) {
      assert.ok(Object.isFrozen(part))
    }
    assert.throws(() => { (p.pm as { maxChildren: number }).maxChildren = 9 }, TypeError)
  })

  it('gives every pool the same shape (keys in the same order)', () => {
    const c = config(load({
      'pools.d/a.conf': '[a]\nlisten = 9001\npm = static\npm.max_children = 1\nhandler = public/index.mjs\nuser = x\n',
      'pools.d/b.conf': www('env[A] = 1', 'ping.path = /ping')
    }).result)
    const shape = (o: object): string => JSON.stringify(Object.keys(o))
    assert.equal(shape(c.pools[0] as object), shape(c.pools[1] as object))
    assert.equal(shape(c.pools[0]?.listen as object), shape(c.pools[1]?.listen as object))
  })

  it('keeps directives without effect under `ignored`, with their notices', () => {
    const { prefix, result } = load({ 'pools.d/www.conf': www('user = www-data', 'chdir = /srv', 'rlimit_core = unlimited') })
    assert.deepEqual(pool(result).ignored, { user: 'www-data', chdir: '/srv', rlimit_core: 'unlimited' })
    const f = path.join(prefix, 'pools.d/www.conf')
    assert.deepEqual(result.notices.map(n => n.message.slice(0, n.message.indexOf(' is'))), [
      `[${f}:6] 'user'`, `[${f}:7] 'chdir'`, `[${f}:8] 'rlimit_core'`
    ])
  })
})
