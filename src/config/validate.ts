// Cross-field rules, after the directive table has filled in values and defaults (php's
// fpm_conf_process_all_pools and fpm_conf_post_process, php-fpm.md §2.3), with php's wording and
// numbers. Unlike php, which stops at the first failure, every rule runs and every error is
// collected; only rules that depend on each other (the dynamic pm chain) stop at the first one,
// and a rule is skipped when a directive it reads failed to parse (that error is already reported).
// Rules also finish the drafts as php does: pm.start_servers default, ondemand zeroing, ping.response.

import fs from 'node:fs'
import net from 'node:net'
import { ConfigError, isFpmError } from '../common/errors.ts'
import { compileAccessFormat } from '../log/access-format.ts'
import type { ConfigNotice, GlobalConfig, PoolConfig } from './types.ts'
import { DEFAULT_ACCESS_FORMAT } from './directives.ts'
import { formatSize, formatTime, parseListenAddress } from './values.ts'

export { parseListenAddress } from './values.ts'

/** A config object under construction: the same shape as types.ts, writable. */
export type Draft<T> = { -readonly [K in keyof T]: T[K] extends object ? Draft<T[K]> : T[K] }
export type PoolDraft = Draft<PoolConfig>
export type GlobalDraft = Draft<GlobalConfig>

export interface Issues {
  readonly errors: ConfigError[]
  readonly notices: ConfigNotice[]
}

/** Which directives of a scope were written, and which of those failed to parse. */
export interface ScopeFacts {
  readonly set: ReadonlySet<string>
  readonly broken: ReadonlySet<string>
}

/** Listen backlog node-fpm uses by default (Node's): ondemand raises lower values to it, as php does. */
export const DEFAULT_BACKLOG = 511
export const MIN_LOG_LIMIT = 512

const PATH_CHARS = /^[A-Za-z0-9/_\-.~]*$/

export function validatePool (p: PoolDraft, facts: ScopeFacts, issues: Issues): void {
  const error = (message: string): void => {
    issues.errors.push(new ConfigError('FPM_ERR_CONFIG_POOL', `[pool ${p.name}] ${message}`,
      { pool: p.name, location: { file: p.file, line: p.line } }))
  }
  const notice = (level: ConfigNotice['level'], message: string): void => {
    issues.notices.push({ level, message: `[pool ${p.name}] ${message}` })
  }
  const usable = (...names: string[]): boolean => names.every(n => !facts.broken.has(n))

  if (facts.set.has('prefix') && usable('prefix') && !isDirectory(p.prefix)) {
    error(`the prefix '${p.prefix}' does not exist or is not a directory`)
  }
  if (usable('listen', 'prefix')) checkListen(p, error)
  const priority = p.ignored['process.priority']
  if (typeof priority === 'number' && (priority < -19 || priority > 20)) error('process.priority must be included into [-19,20]')
  if (usable('pm') && (p.pm.mode as string | null) === null) error('the process manager is missing (static, dynamic or ondemand)')
  const childrenOk = usable('pm.max_children') && p.pm.maxChildren >= 1
  if (usable('pm.max_children') && p.pm.maxChildren < 1) error('pm.max_children must be a positive value')
  if (usable('pm.thread_concurrency') && p.pm.threadConcurrency < 1) error(`pm.thread_concurrency(${p.pm.threadConcurrency}) must be a positive value`)
  if (p.pm.mode === 'dynamic' && childrenOk &&
    usable('pm.min_spare_servers', 'pm.max_spare_servers', 'pm.start_servers', 'pm.max_spawn_rate')) {
    checkDynamic(p, error, notice)
  }
  if (p.pm.mode === 'ondemand' && usable('pm.process_idle_timeout', 'listen.backlog')) checkOndemand(p, error, notice)
  if (p.pm.accept === 'threads' && usable('pm.accept', 'pm', 'listen')) checkThreadsAccept(p, error)
  checkStatusAndPing(p, error)
  if (p.access.log !== null && p.access.log !== '' && p.access.format === null) p.access.format = DEFAULT_ACCESS_FORMAT
  checkAccessFormat(p, error, notice)
  if (usable('slowlog', 'request_slowlog_timeout', 'request_slowlog_trace_depth', 'request_terminate_timeout')) {
    checkSlowlog(p, facts, error)
  }
  if (usable('root', 'handler', 'prefix')) checkRootAndHandler(p, facts, error)
  if (usable('request.max_params_size') && p.request.maxParamsBytes <= 0) error('request.max_params_size must be a positive value')
  if (usable('pm.max_requests_jitter') && p.pm.maxRequestsJitter < 0) error(`pm.max_requests_jitter(${p.pm.maxRequestsJitter}) must be a positive value or 0`)
  if (usable('request.queue_max', 'pm.max_children', 'pm.thread_concurrency')) checkQueue(p, error)
  if (usable('pm.heap_soft_limit', 'pm.heap_limit')) checkHeapSoftLimit(p, error)
  if (usable('request.queue_timeout') && p.request.queueTimeoutMs <= 0) {
    error(`request.queue_timeout(${formatTime(p.request.queueTimeoutMs)}) must be greater than 0s`)
  }
  if (usable('listen.allowed_clients')) checkAllowedClients(p, notice)
}

function checkListen (p: PoolDraft, error: (m: string) => void): void {
  const address = p.listen.address as string | null
  if (address === null || address === '') {
    error('no listen address have been defined!')
    return
  }
  try {
    p.listen.target = parseListenAddress(address, p.prefix)
  } catch (err) {
    if (!isFpmError(err)) throw err
    error(err.message)
  }
}

function checkDynamic (p: PoolDraft, error: (m: string) => void, notice: (l: ConfigNotice['level'], m: string) => void): void {
  const pm = p.pm
  if (pm.minSpareServers <= 0) return error(`pm.min_spare_servers(${pm.minSpareServers}) must be a positive value`)
  if (pm.maxSpareServers <= 0) return error(`pm.max_spare_servers(${pm.maxSpareServers}) must be a positive value`)
  if (pm.minSpareServers > pm.maxChildren || pm.maxSpareServers > pm.maxChildren) {
    return error(`pm.min_spare_servers(${pm.minSpareServers}) and pm.max_spare_servers(${pm.maxSpareServers}) cannot be greater than pm.max_children(${pm.maxChildren})`)
  }
  if (pm.maxSpareServers < pm.minSpareServers) {
    return error(`pm.max_spare_servers(${pm.maxSpareServers}) must not be less than pm.min_spare_servers(${pm.minSpareServers})`)
  }
  if (pm.startServers <= 0) {
    pm.startServers = pm.minSpareServers + Math.floor((pm.maxSpareServers - pm.minSpareServers) / 2)
    notice('notice', `pm.start_servers is not set. It's been set to ${pm.startServers}.`)
  } else if (pm.startServers < pm.minSpareServers || pm.startServers > pm.maxSpareServers) {
    return error(`pm.start_servers(${pm.startServers}) must not be less than pm.min_spare_servers(${pm.minSpareServers}) and not greater than pm.max_spare_servers(${pm.maxSpareServers})`)
  }
  if (pm.maxSpawnRate < 1) error('pm.max_spawn_rate must be a positive value')
}

function checkOndemand (p: PoolDraft, error: (m: string) => void, notice: (l: ConfigNotice['level'], m: string) => void): void {
  if (p.pm.processIdleTimeoutMs <= 0) {
    error(`pm.process_idle_timeout(${formatTime(p.pm.processIdleTimeoutMs)}) must be greater than 0s`)
  }
  // -1 asks the kernel for its maximum, which is never too low.
  if (p.listen.backlog >= 0 && p.listen.backlog < DEFAULT_BACKLOG) {
    notice('warning', `listen.backlog(${p.listen.backlog}) was too low for the ondemand process manager. I updated it for you to ${DEFAULT_BACKLOG}.`)
    p.listen.backlog = DEFAULT_BACKLOG
  }
  p.pm.startServers = 0
  p.pm.minSpareServers = 0
  p.pm.maxSpareServers = 0
}

/** Requests that wait for a free thread, per thread slot, when request.queue_max is not set. */
export const QUEUE_PER_SLOT = 32

/** request.queue_max: unset means QUEUE_PER_SLOT per thread slot (a negative value is refused). */
function checkQueue (p: PoolDraft, error: (m: string) => void): void {
  const max = p.request.queueMax as number | null
  if (max === null) {
    p.request.queueMax = QUEUE_PER_SLOT * Math.max(1, p.pm.maxChildren) * Math.max(1, p.pm.threadConcurrency)
  } else if (max < 0) {
    error(`request.queue_max(${max}) must be a positive value or 0`)
  }
}

/** pm.heap_soft_limit, unset: this share of pm.heap_limit (what a request may add between two checks: the rest). */
export const HEAP_SOFT_LIMIT_SHARE = 3 / 4

/** pm.heap_soft_limit: unset means 3/4 of pm.heap_limit (0 without one); it must stay below pm.heap_limit. */
function checkHeapSoftLimit (p: PoolDraft, error: (m: string) => void): void {
  const hardBytes = p.heapLimitMb * 1024 * 1024
  const soft = p.heapSoftLimitBytes as number | null
  if (soft === null) {
    p.heapSoftLimitBytes = Math.floor(hardBytes * HEAP_SOFT_LIMIT_SHARE)
  } else if (hardBytes > 0 && soft >= hardBytes) {
    error(`pm.heap_soft_limit(${formatSize(soft)}) must be less than pm.heap_limit(${formatSize(hardBytes)})`)
  }
}

/**
 * pm.accept = threads: each thread listens on a descriptor of its own of the pool's socket, which
 * Windows named pipes cannot give. The pool's own decisions that need requests waiting in the pool
 * (dynamic, ondemand) do not apply: requests wait in the kernel's backlog, unseen.
 */
function checkThreadsAccept (p: PoolDraft, error: (m: string) => void): void {
  if (p.listen.target.kind === 'pipe' || process.platform === 'win32') error('pm.accept = threads is not available on Windows (a named pipe cannot be shared by threads): use pm.accept = main')
  if (p.pm.mode !== 'static') error(`pm.accept = threads needs pm = static: ${p.pm.mode} starts threads for requests that wait in the pool, and with threads accepting they wait in the kernel's backlog, unseen`)
}

function checkStatusAndPing (p: PoolDraft, error: (m: string) => void): void {
  const status = p.pm.statusPath
  if (status !== null && status !== '') {
    if (!status.startsWith('/')) error(`the status path '${status}' must start with a '/'`)
    else if (p.pm.statusListen === null && status.length < 2) error(`the status path '${status}' is not long enough`)
    else if (!PATH_CHARS.test(status)) error(`the status path '${status}' must contain only the following characters '[alphanum]/_-.~'`)
  }
  const statusListen = p.pm.statusListen
  if (statusListen !== null && statusListen !== '') {
    try {
      parseListenAddress(statusListen, p.prefix)
    } catch (err) {
      if (!isFpmError(err)) throw err
      error(`pm.status_listen: ${err.message}`)
    }
  }
  const ping = p.ping.path
  if (ping !== null && ping !== '') {
    if (!ping.startsWith('/')) error(`the ping path '${ping}' must start with a '/'`)
    else if (ping.length < 2) error(`the ping path '${ping}' is not long enough`)
    else if (!PATH_CHARS.test(ping)) error(`the ping path '${ping}' must contain only the following characters '[alphanum]/_-.~'`)
    if (p.ping.response === null) p.ping.response = 'pong'
    else if (p.ping.response === '') error(`the ping response page '${p.ping.response}' is not long enough`)
  } else {
    // php forgets the response when there is no ping path.
    p.ping.response = null
  }
}

/**
 * php's dry run of fpm_log_write: the format is compiled (and dropped: the config stays plain data,
 * the access log writer compiles it again). As in php, only a pool with an access.log must have a
 * good format; without one it is unused, and a bad one only earns a warning.
 */
function checkAccessFormat (p: PoolDraft, error: (m: string) => void, notice: (l: ConfigNotice['level'], m: string) => void): void {
  const format = p.access.format
  if (format === null) return
  const compiled = compileAccessFormat(format)
  if (compiled.ok) return
  const message = `wrong format for access.format '${format}': ${compiled.reason}`
  if (p.access.log !== null && p.access.log !== '') error(message)
  else notice('warning', `${message} (unused: access.log is not set)`)
}

function checkSlowlog (p: PoolDraft, facts: ScopeFacts, error: (m: string) => void): void {
  const s = p.slowlog
  const hasFile = s.file !== null && s.file !== ''
  if (s.timeoutMs > 0) {
    if (!hasFile) error("'slowlog' must be specified for use with 'request_slowlog_timeout'")
    const terminate = p.request.terminateTimeoutMs
    if (terminate > 0 && s.timeoutMs > terminate) {
      error(`'request_slowlog_timeout' (${phpSeconds(s.timeoutMs)}) can't be greater than 'request_terminate_timeout' (${phpSeconds(terminate)})`)
    }
  }
  // php: 0 (or unset) means the default 20; any other value needs a slowlog and must be positive.
  if (facts.set.has('request_slowlog_trace_depth') && s.traceDepth !== 0) {
    if (!hasFile) error("'slowlog' must be specified for use with 'request_slowlog_trace_depth'")
    if (s.traceDepth < 0) error(`'request_slowlog_trace_depth' (${s.traceDepth}) must be a positive value`)
  }
  if (s.traceDepth === 0) s.traceDepth = 20
}

function checkRootAndHandler (p: PoolDraft, facts: ScopeFacts, error: (m: string) => void): void {
  if (p.root === null && p.handler === null) {
    if (!facts.set.has('root') && !facts.set.has('handler')) error("'root' or 'handler' must be set")
    return
  }
  if (p.root !== null) {
    if (isDirectory(p.root)) p.root = fs.realpathSync(p.root)
    else error(`the root '${p.root}' does not exist or is not a directory`)
  }
  if (p.handler !== null) {
    if (isFile(p.handler)) p.handler = fs.realpathSync(p.handler)
    else error(`the handler '${p.handler}' does not exist or is not a file`)
  }
}

function checkAllowedClients (p: PoolDraft, notice: (l: ConfigNotice['level'], m: string) => void): void {
  const clients = p.listen.allowedClients
  if (clients === null) return
  // php logs these at start-up without failing, and then refuses what it could not parse.
  const valid = clients.filter(ip => {
    if (net.isIP(ip) !== 0) return true
    notice('warning', `Wrong IP address '${ip}' in listen.allowed_clients`)
    return false
  })
  if (valid.length === 0) notice('warning', 'There are no allowed addresses')
  p.listen.allowedClients = valid
}

export function validateGlobal (g: GlobalDraft, facts: ScopeFacts, issues: Issues): void {
  const error = (message: string): void => { issues.errors.push(new ConfigError('FPM_ERR_CONFIG_VALUE', message)) }
  if (!facts.broken.has('log_limit') && g.logLimit < MIN_LOG_LIMIT) error(`log_limit must be greater than ${MIN_LOG_LIMIT}`)
  if (!facts.broken.has('process.max') && g.processMax < 0) error("process_max can't be negative")
  const priority = g.ignored['process.priority']
  if (typeof priority === 'number' && (priority < -19 || priority > 20)) error('process.priority must be included into [-19,20]')
}

/** Rules across pools: at least one pool, process.max vs initial threads, one pool per address. */
export function validatePools (g: GlobalDraft, pools: readonly PoolDraft[], issues: Issues): void {
  if (pools.length === 0) {
    issues.errors.push(new ConfigError('FPM_ERR_CONFIG', 'No pool defined. at least one pool section must be specified in config file'))
    return
  }
  if (g.processMax > 0) {
    const initial = pools.reduce((sum, p) => sum + initialThreads(p), 0)
    if (g.processMax < initial) {
      issues.errors.push(new ConfigError('FPM_ERR_CONFIG_VALUE',
        `process.max (${g.processMax}) must not be less than the total number of children that start initially across all pools (${initial})`))
    }
  }
  const seen = new Map<string, string>()
  for (const p of pools) {
    const target = p.listen.target as PoolDraft['listen']['target'] | undefined
    if (target === undefined) continue
    const key = target.kind === 'tcp' ? `tcp ${target.host ?? ''} ${target.port}` : `${target.kind} ${target.path}`
    const first = seen.get(key)
    if (first === undefined) {
      seen.set(key, p.name)
      continue
    }
    issues.errors.push(new ConfigError('FPM_ERR_CONFIG_POOL',
      `[pool ${p.name}] unable to set listen address as it's already used in another pool '${first}'`,
      { pool: p.name, location: { file: p.file, line: p.line } }))
  }
}

/** Threads a pool starts with: static all of them, dynamic pm.start_servers, ondemand none. */
export function initialThreads (p: { readonly pm: { readonly mode: string, readonly maxChildren: number, readonly startServers: number } }): number {
  if (p.pm.mode === 'static') return p.pm.maxChildren
  if (p.pm.mode === 'dynamic') return p.pm.startServers
  return 0
}

/** php prints these timeouts as bare seconds; keep that, unless ms were used. */
function phpSeconds (ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : formatTime(ms)
}

function isDirectory (p: string): boolean {
  try {
    return fs.statSync(p).isDirectory()
  } catch {
    return false
  }
}

function isFile (p: string): boolean {
  try {
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}
