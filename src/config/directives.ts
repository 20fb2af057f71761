// THE directive table (php's ini_fpm_global_options / ini_fpm_pool_options): one entry per
// directive gives its php spelling, scope, kind (which parser and how -tt prints it), default,
// target field in types.ts, a one-line doc and whether node-fpm implements it or only accepts it
// with a notice. Parsing, defaults, the -tt dump and the pools.d/www.conf check all read this
// table; cross-field rules live in validate.ts. Order = php's dump order (fpm_conf.c
// fpm_conf_dump), node-fpm's own directives placed next to their relatives.

import type { DirectiveValue } from './types.ts'
import {
  fail, formatOctalMode, formatSize, formatTime, ok, parseBoolean, parseInteger, parseList, parseOctalMode,
  parseSize, parseTime
} from './values.ts'
import type { Parsed } from './values.ts'

/** 'any': only `include`, which is allowed in every section. */
export type DirectiveScope = 'global' | 'pool' | 'any'
export type DirectiveKind =
  'int' | 'bool' | 'time' | 'size' | 'string' | 'enum' | 'path' | 'mode' | 'list' | 'array' | 'include'
/** 'notice': accepted for php-fpm compatibility, stored, and a notice says why it has no effect (yet). */
export type DirectiveStatus = 'implemented' | 'notice'

export interface Directive {
  /** php's spelling; scalars match case-insensitively, array names and `include` exactly. */
  readonly name: string
  readonly scope: DirectiveScope
  readonly kind: DirectiveKind
  /** Times in ms, sizes in bytes; null = unset (dumped as `undefined`). */
  readonly default: DirectiveValue
  /** Dotted path in GlobalConfig / PoolConfig; null: kept in `ignored` under the directive name. */
  readonly field: string | null
  readonly doc: string
  readonly status: DirectiveStatus
  /** Status 'notice': the text after `'name' ` in the notice: why, and what to use instead. */
  readonly notice: string | null
  /** Only values for which this is true raise the notice (daemonize: only `yes`). */
  readonly noticeWhen: ((value: DirectiveValue) => boolean) | null
  /** Kind 'path': relative values are resolved against this (default: the pool or global prefix). */
  readonly relativeTo: 'prefix' | 'root-or-prefix' | 'global-prefix'
  /** Parse the value once ${ENV} (and, for string kinds, $pool) are expanded. */
  readonly parse: (raw: string) => Parsed<DirectiveValue>
  /** How -tt prints the value. */
  readonly format: (value: DirectiveValue) => string
  /** Field value <-> directive value when the field uses another unit (pm.heap_limit: MB vs bytes). */
  readonly toField: (value: DirectiveValue) => DirectiveValue
  readonly fromField: (value: DirectiveValue) => DirectiveValue
}

interface Spec {
  readonly name: string
  readonly field: string | null
  readonly doc: string
  readonly notice?: string
  readonly noticeWhen?: (value: DirectiveValue) => boolean
}

type Scoped = Spec & { readonly scope: DirectiveScope }

const identity = (v: DirectiveValue): DirectiveValue => v
const undef = (v: DirectiveValue): string => v === null ? 'undefined' : String(v)
const MiB = 1024 * 1024

function make (s: Scoped, kind: DirectiveKind, dflt: DirectiveValue,
  parse: (raw: string) => Parsed<DirectiveValue>, format: (v: DirectiveValue) => string,
  extra: Partial<Pick<Directive, 'relativeTo' | 'toField' | 'fromField'>> = {}): Directive {
  return {
    name: s.name,
    scope: s.scope,
    kind,
    default: dflt,
    field: s.field,
    doc: s.doc,
    status: s.notice === undefined ? 'implemented' : 'notice',
    notice: s.notice ?? null,
    noticeWhen: s.noticeWhen ?? null,
    relativeTo: extra.relativeTo ?? 'prefix',
    parse,
    format,
    toField: extra.toField ?? identity,
    fromField: extra.fromField ?? identity
  }
}

const int = (s: Scoped, dflt: number | null) => make(s, 'int', dflt, parseInteger, undef)
const bool = (s: Scoped, dflt: boolean) => make(s, 'bool', dflt, parseBoolean, v => v === true ? 'yes' : 'no')
const time = (s: Scoped, dfltMs: number) => make(s, 'time', dfltMs, parseTime, v => formatTime(v as number))
const size = (s: Scoped, dfltBytes: number, extra: Partial<Pick<Directive, 'toField' | 'fromField'>> = {}) =>
  make(s, 'size', dfltBytes, parseSize, v => formatSize(v as number), extra)
const str = (s: Scoped, dflt: string | null) => make(s, 'string', dflt, ok, undef)
const pathOf = (s: Scoped, relativeTo: Directive['relativeTo'] = 'prefix') =>
  make(s, 'path', null, ok, undef, { relativeTo })
const mode = (s: Scoped, dflt: number) => make(s, 'mode', dflt, parseOctalMode, v => formatOctalMode(v as number))
const list = (s: Scoped, dflt: readonly string[] | null, separator: 'comma' | 'space') =>
  make(s, 'list', dflt, raw => ok(parseList(raw, separator)),
    v => v === null ? 'undefined' : (v as readonly string[]).join(separator === 'comma' ? ',' : ' '))
const array = (s: Scoped) => make(s, 'array', null, ok, undef)

/** An enum: case-insensitive choices; `aliases` maps extra words onto a choice. */
function enumOf (s: Scoped, dflt: string | null, choices: readonly string[], reason: string,
  aliases: Readonly<Record<string, string>> = {}, upper = false): Directive {
  return make(s, 'enum', dflt, raw => {
    const word = raw.trim().toLowerCase()
    const value = aliases[word] ?? word
    return choices.includes(value) ? ok(value) : fail(reason)
  }, v => v === null ? 'undefined' : upper ? String(v).toUpperCase() : String(v))
}

const G = (spec: Spec): Scoped => ({ ...spec, scope: 'global' })
const P = (spec: Spec): Scoped => ({ ...spec, scope: 'pool' })

// Notice texts, shared by the global and pool spelling of a directive.
const IGNORED_LIMITS = "is ignored: threads share the server's limits: set them on the node-fpm process"
const IGNORED_PRIORITY = "is ignored for now: threads share the server's priority (a later version may map it to piscina's niceIncrement)"
const IGNORED_SYSLOG = 'is ignored: node-fpm does not write to syslog: keep error_log = stderr and let journald or the supervisor collect it'
const IGNORED_OUTPUT = 'is ignored: handler console output always goes to the error log, tagged with the pool'

export const SYSLOG_FACILITIES = [
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'
] as const

export const DEFAULT_ACCESS_FORMAT = '%R - %u %t "%m %r" %s'

export const DIRECTIVES: readonly Directive[] = [
  // ---- [global] ----
  pathOf(G({ name: 'pid', field: 'pid', doc: 'PID file of the server; -g overrides it.' }), 'global-prefix'),
  make(G({
    name: 'error_log',
    field: 'errorLog',
    // Deviation: php's default is log/php-fpm.log; node-fpm runs in the foreground, so stderr.
    doc: "Error log: 'stderr' (default: node-fpm runs in the foreground) or a file; 'syslog' is not supported."
  }), 'path', 'stderr', raw => raw.toLowerCase() === 'syslog'
    ? fail("'syslog' is not supported: keep the default stderr (journald or the supervisor collects it) or give a file")
    : ok(raw), undef, { relativeTo: 'global-prefix' }),
  str(G({ name: 'syslog.ident', field: null, doc: 'syslog ident.', notice: IGNORED_SYSLOG }), 'php-fpm'),
  enumOf(G({ name: 'syslog.facility', field: null, doc: 'syslog facility.', notice: IGNORED_SYSLOG }),
    'daemon', SYSLOG_FACILITIES, 'invalid value'),
  bool(G({ name: 'log_buffering', field: null, doc: 'Buffer log lines.', notice: 'is ignored: log lines are always written whole' }), true),
  enumOf(G({ name: 'log_level', field: 'logLevel', doc: 'alert, error, warning, notice or debug.' }),
    'notice', ['alert', 'error', 'warning', 'notice', 'debug'], "invalid value for 'log_level'", { warn: 'warning' }, true),
  int(G({ name: 'log_limit', field: 'logLimit', doc: 'Longest log line in characters (at least 512).' }), 1024),
  time(G({ name: 'emergency_restart_interval', field: 'emergencyRestartIntervalMs', doc: 'Window for emergency_restart_threshold; 0 = off.' }), 0),
  int(G({
    name: 'emergency_restart_threshold',
    field: 'emergencyRestartThreshold',
    // Deviation: php counts SIGSEGV/SIGBUS deaths of any child and reloads everything; a thread's
    // crashes are these abnormal exits, and a pool's threads share nothing with another pool's.
    doc: "When this many threads of one pool die (a crash, V8's heap cap, process.exit() in a handler; not retirements or request_terminate_timeout kills) within emergency_restart_interval, every thread of that pool is replaced gracefully; 0 = off."
  }), 0),
  time(G({ name: 'process_control_timeout', field: 'processControlTimeoutMs', doc: 'Time threads get to finish on reload/stop before they are terminated.' }), 0),
  int(G({ name: 'process.max', field: 'processMax', doc: 'Cap on threads across all pools; 0 = no cap.' }), 0),
  int(G({ name: 'process.priority', field: null, doc: 'nice value of the server.', notice: IGNORED_PRIORITY }), null),
  bool(G({
    name: 'daemonize',
    field: null,
    // Deviation: php's default is yes; node-fpm never forks into the background.
    doc: 'Always no: node-fpm runs in the foreground.',
    notice: 'is ignored: node-fpm always runs in the foreground: use systemd or a supervisor',
    noticeWhen: v => v === true
  }), false),
  int(G({ name: 'rlimit_files', field: null, doc: 'Open files limit.', notice: IGNORED_LIMITS }), null),
  make(G({ name: 'rlimit_core', field: null, doc: 'Core file size limit.', notice: IGNORED_LIMITS }), 'int', null, parseRlimitCore, undef),
  str(G({ name: 'events.mechanism', field: null, doc: 'Event mechanism.', notice: "is ignored: Node's event loop (libuv) chooses it" }), null),
  time(G({ name: 'systemd_interval', field: null, doc: 'sd_notify status interval.', notice: 'is ignored: node-fpm sends no sd_notify status: run it as Type=simple' }), 10_000),
  // Expanded by the reader (ini-parser.ts) wherever it appears; listed for completeness, not dumped.
  make({ name: 'include', scope: 'any', field: null, doc: 'Include other files (glob, sorted, relative to the prefix), at most 5 deep.' },
    'include', null, ok, undef),

  // ---- pools ----
  pathOf(P({ name: 'prefix', field: 'prefix', doc: "Prefix for this pool's relative paths (itself relative to the global prefix)." }), 'global-prefix'),
  str(P({ name: 'user', field: null, doc: 'Unix user of the workers.', notice: "is ignored: threads share the server's uid: run node-fpm as that user or use a separate instance" }), null),
  str(P({ name: 'group', field: null, doc: 'Unix group of the workers.', notice: "is ignored: threads share the server's gid: run node-fpm as that group or use a separate instance" }), null),
  str(P({ name: 'listen', field: 'listen.address', doc: "Address to accept FastCGI on: 'ip:port', '[ipv6]:port', 'port' (all addresses) or a unix socket path." }), null),
  // Deviation: php uses -1 (the kernel's SOMAXCONN) on Linux; 511 is Node's net.Server default.
  int(P({ name: 'listen.backlog', field: 'listen.backlog', doc: "listen(2) backlog (511 is Node's default; -1 = the kernel's maximum)." }), 511),
  str(P({ name: 'listen.acl_users', field: null, doc: 'POSIX ACL users of the unix socket.', notice: 'is ignored: no ACL is set on the socket: use listen.owner, listen.group and listen.mode' }), null),
  str(P({ name: 'listen.acl_groups', field: null, doc: 'POSIX ACL groups of the unix socket.', notice: 'is ignored: no ACL is set on the socket: use listen.owner, listen.group and listen.mode' }), null),
  str(P({ name: 'listen.owner', field: 'listen.owner', doc: 'Owner of the unix socket (when node-fpm runs as root).' }), null),
  str(P({ name: 'listen.group', field: 'listen.group', doc: 'Group of the unix socket (when node-fpm runs as root).' }), null),
  mode(P({ name: 'listen.mode', field: 'listen.mode', doc: 'Permissions of the unix socket, in octal.' }), 0o660),
  list(P({ name: 'listen.allowed_clients', field: 'listen.allowedClients', doc: 'Comma-separated IP addresses allowed to connect over TCP; unset = any.' }), null, 'comma'),
  int(P({ name: 'listen.setfib', field: null, doc: 'FreeBSD routing table of the socket.', notice: 'is ignored: Node cannot set a routing table (SO_SETFIB) on a socket' }), -1),
  int(P({ name: 'process.priority', field: null, doc: 'nice value of the workers.', notice: IGNORED_PRIORITY }), null),
  bool(P({ name: 'process.dumpable', field: null, doc: 'Make workers dumpable.', notice: "is ignored: threads share the server's dumpable flag" }), false),
  enumOf(P({ name: 'pm', field: 'pm.mode', doc: 'Process manager: static, dynamic or ondemand (required).' }),
    null, ['static', 'dynamic', 'ondemand'], 'invalid process manager (static, dynamic or ondemand)'),
  int(P({ name: 'pm.max_children', field: 'pm.maxChildren', doc: 'Threads of a static pool, the cap of a dynamic or ondemand one (required).' }), 0),
  int(P({ name: 'pm.start_servers', field: 'pm.startServers', doc: 'dynamic: threads at start-up; default min + (max - min) / 2 of the spare servers.' }), 0),
  int(P({ name: 'pm.min_spare_servers', field: 'pm.minSpareServers', doc: 'dynamic: fewest idle threads (required).' }), 0),
  int(P({ name: 'pm.max_spare_servers', field: 'pm.maxSpareServers', doc: 'dynamic: most idle threads (required).' }), 0),
  int(P({ name: 'pm.max_spawn_rate', field: 'pm.maxSpawnRate', doc: 'dynamic: most threads started per second.' }), 32),
  time(P({ name: 'pm.process_idle_timeout', field: 'pm.processIdleTimeoutMs', doc: 'ondemand: idle time after which a thread ends.' }), 10_000),
  int(P({ name: 'pm.max_requests', field: 'pm.maxRequests', doc: 'Requests a thread serves before it is replaced (only when idle, its replacement started first); 0 = no limit.' }), 0),
  int(P({
    name: 'pm.max_requests_jitter',
    field: 'pm.maxRequestsJitter',
    // node-fpm's own (php has none; gunicorn's max_requests_jitter): threads that share the load
    // evenly would otherwise all reach pm.max_requests together.
    doc: 'Each thread serves pm.max_requests plus a random extra in [0, jitter], so that threads do not all recycle at once; 0 = none.'
  }), 0),
  int(P({
    name: 'pm.thread_concurrency',
    field: 'pm.threadConcurrency',
    doc: 'Requests one thread runs at once. 1 (php-fpm\'s model): a timeout or crash ends exactly one request. N > 1 suits I/O-bound handlers: more requests per thread, but a crash or kill ends all N.'
  }), 1),
  enumOf(P({
    name: 'pm.accept',
    field: 'pm.accept',
    doc: "Who accepts the pool's connections: main (the main thread; requests wait in the pool and go to any free thread) or threads (each thread accepts on the socket and serves its connections itself, as php-fpm's children do: no hop between threads, but a connection stays on the thread that accepted it)."
  }), 'main', ['main', 'threads'], 'invalid value (main or threads)'),
  size(P({
    name: 'pm.heap_limit',
    field: 'heapLimitMb',
    doc: "V8 heap cap of each thread (K, M, G); 0 = Node's default, at most 2047M; php_value[memory_limit] sets it when unset."
  }), 0, {
    // Written as a size, stored in MiB (worker resourceLimits.maxOldGenerationSizeMb), rounded up.
    toField: v => Math.ceil((v as number) / MiB),
    fromField: v => (v as number) * MiB
  }),
  make(P({
    name: 'pm.heap_soft_limit',
    field: 'heapSoftLimitBytes',
    // node-fpm's own. The graceful path: checked after each request (the thread's own heap
    // statistics), where pm.heap_limit is a hard stop that fails the request running, and for some
    // allocation shapes aborts the whole process (node-runtime.md §3). Unset: 3/4 of pm.heap_limit,
    // which leaves a quarter of the cap for the peak of the next request.
    doc: 'Heap in use after a request beyond which the thread is retired (takes no more requests, ends once idle, replaced at once); 0 = off. Unset: 3/4 of pm.heap_limit (off when pm.heap_limit is 0).'
  }), 'size', null, parseSize, v => v === null ? 'undefined' : formatSize(v as number)),
  str(P({ name: 'pm.status_path', field: 'pm.statusPath', doc: 'URI of the status page (matched against SCRIPT_NAME).' }), null),
  str(P({ name: 'pm.status_listen', field: 'pm.statusListen', doc: 'Extra address serving only the status page.' }), null),
  str(P({ name: 'ping.path', field: 'ping.path', doc: 'URI of the ping page (matched against SCRIPT_NAME).' }), null),
  str(P({ name: 'ping.response', field: 'ping.response', doc: 'Body of the ping page (pong when ping.path is set).' }), null),
  pathOf(P({ name: 'access.log', field: 'access.log', doc: 'Access log file: one line per request (reopened on SIGUSR1).' })),
  str(P({ name: 'access.format', field: 'access.format', doc: "Access log format (php's specifiers)." }), null),
  array(P({ name: 'access.suppress_path', field: 'access.suppressPaths', doc: 'URIs of successful GET/HEAD requests without query or body left out of the access log (one per line, `[]`).' })),
  pathOf(P({ name: 'slowlog', field: 'slowlog.file', doc: 'Slow request log file (created at start, mode 0600).' })),
  time(P({
    name: 'request_slowlog_timeout',
    field: 'slowlog.timeoutMs',
    // The stack is the thread's JavaScript stack, read through the in-process inspector (src/pool/slowlog.ts).
    doc: 'Running time (from its start on a thread) after which a request is written to the slowlog once, with the JavaScript stack of its thread; 0 = off.'
  }), 0),
  int(P({ name: 'request_slowlog_trace_depth', field: 'slowlog.traceDepth', doc: 'Stack frames in a slowlog entry (innermost first).' }), 20),
  time(P({
    name: 'request_terminate_timeout',
    field: 'request.terminateTimeoutMs',
    doc: 'Running time (from its start on a thread) after which a request gets 504 and its request.signal is aborted; a handler still running after request_terminate_timeout_grace has its thread terminated and replaced; 0 = off.'
  }), 0),
  bool(P({ name: 'request_terminate_timeout_track_finished', field: 'request.terminateTimeoutTrackFinished', doc: 'The terminate timeout also covers work after the response (ctx.finishRequest, ctx.waitUntil).' }), false),
  time(P({
    name: 'request_terminate_timeout_grace',
    field: 'request.terminateGraceMs',
    // node-fpm's own (php sends SIGTERM at once): the abort is cooperative first. 1s is ample for a
    // handler that listens to request.signal (an aborted fetch or query rejects within
    // milliseconds, a rollback takes a few), short next to any sensible timeout, and the client
    // does not wait for it: it has its 504 already.
    doc: 'Time a handler gets, after request_terminate_timeout aborted its request.signal, to end before its thread is terminated; 0 = terminate at once.'
  }), 1000),
  size(P({ name: 'request.max_params_size', field: 'request.maxParamsBytes', doc: 'Cap on the FastCGI params of one request.' }), 128 * 1024),
  // 1M: a body that fits is moved to the thread in one transfer (nginx usually sends it whole at
  // once); streaming it costs a round trip per credit window. php-fpm itself buffers up to post_max_size.
  size(P({ name: 'request.body_buffer_size', field: 'request.bodyBufferBytes', doc: 'Request bodies up to this size are buffered; larger ones stream.' }), 1024 * 1024),
  size(P({ name: 'request.body_max_size', field: 'request.bodyMaxBytes', doc: 'Cap on a request body (413 beyond it); 0 = no cap; php_value[post_max_size] sets it when unset.' }), 8 * MiB),
  time(P({
    name: 'request.body_timeout',
    field: 'request.bodyTimeoutMs',
    // node-fpm's own (php has none: a php-fpm child waits for a stalled body as long as the web
    // server keeps the connection). nginx's client_body_timeout: its semantics and its default.
    doc: 'Longest wait between two reads of a request body that is not complete (not the whole upload); then 408 and the connection is closed; 0 = no limit.'
  }), 60_000),
  int(P({
    name: 'request.queue_max',
    field: 'request.queueMax',
    // node-fpm's own: php's queue is the kernel's listen backlog, without a bound in time.
    doc: 'Requests that may wait in the pool for a free thread; beyond it 503 at once. Unset: 32 per thread slot (32 x pm.max_children x pm.thread_concurrency); 0 = none wait.'
  }), null),
  time(P({ name: 'request.queue_timeout', field: 'request.queueTimeoutMs', doc: 'Longest wait in the pool for a free thread; then 503 (with Retry-After).' }), 30_000),
  int(P({ name: 'rlimit_files', field: null, doc: 'Open files limit of the workers.', notice: IGNORED_LIMITS }), null),
  make(P({ name: 'rlimit_core', field: null, doc: 'Core file size limit of the workers.', notice: IGNORED_LIMITS }), 'int', null, parseRlimitCore, undef),
  str(P({ name: 'chroot', field: null, doc: 'Directory to chroot the workers into.', notice: 'is ignored: threads cannot chroot: run node-fpm in a container or chroot it as a whole' }), null),
  str(P({ name: 'chdir', field: null, doc: 'Working directory of the workers.', notice: "is ignored: threads cannot chdir (the working directory is the server's): resolve paths from import.meta.dirname" }), null),
  bool(P({ name: 'catch_workers_output', field: null, doc: 'Send worker stdout/stderr to the error log.', notice: IGNORED_OUTPUT }), false),
  bool(P({ name: 'decorate_workers_output', field: null, doc: 'Prefix captured worker output.', notice: IGNORED_OUTPUT }), true),
  bool(P({ name: 'clear_env', field: 'clearEnv', doc: "Handlers see only env[...] values, not the server's environment." }), true),
  list(P({ name: 'security.limit_extensions', field: 'limitExtensions', doc: 'Suffixes a script may have; empty = any.' }),
    ['.js', '.mjs', '.cjs', '.ts', '.mts'], 'space'),
  pathOf(P({ name: 'root', field: 'root', doc: "Document root: scripts must be inside it (relative to the pool's prefix); root or handler is required." })),
  pathOf(P({ name: 'handler', field: 'handler', doc: 'Front controller module serving every request (relative to root, else the prefix).' }), 'root-or-prefix'),
  str(P({ name: 'apparmor_hat', field: null, doc: 'AppArmor hat of the workers.', notice: 'is ignored: threads cannot change AppArmor hat: confine the node-fpm process with its own profile' }), null),
  array(P({ name: 'env', field: 'env', doc: "Environment of the handlers; a value '$NAME' copies the server's variable." })),
  array(P({ name: 'php_value', field: 'phpValues', doc: 'Values handlers can read; memory_limit, post_max_size and max_execution_time map to pm.heap_limit, request.body_max_size and request_terminate_timeout.' })),
  array(P({ name: 'php_flag', field: 'phpValues', doc: 'Like php_value, a boolean stored as 1 or 0.' })),
  array(P({ name: 'php_admin_value', field: 'phpAdminValues', doc: 'Like php_value; wins over php_value in the mappings.' })),
  array(P({ name: 'php_admin_flag', field: 'phpAdminValues', doc: 'Like php_admin_value, a boolean stored as 1 or 0.' }))
]

function parseRlimitCore (raw: string): Parsed<DirectiveValue> {
  if (raw.toLowerCase() === 'unlimited') return ok('unlimited')
  const n = parseInteger(raw)
  if (!n.ok) return n
  return n.value < 0 ? fail("must be greater than zero or 'unlimited'") : n
}

const SCALARS = { global: new Map<string, Directive>(), pool: new Map<string, Directive>() }
const ARRAYS = new Map<string, Directive>()
for (const d of DIRECTIVES) {
  if (d.kind === 'array') ARRAYS.set(d.name, d)
  else if (d.scope === 'global' || d.scope === 'pool') SCALARS[d.scope].set(d.name, d)
}

/** A scalar directive of a scope, by name, case-insensitively (as php). */
export function findDirective (scope: 'global' | 'pool', name: string): Directive | undefined {
  return SCALARS[scope].get(name.toLowerCase())
}

/** An array directive (`name[key] = value`), by exact name (php matches these case-sensitively). */
export function findArrayDirective (name: string): Directive | undefined {
  return ARRAYS.get(name)
}

export function directivesOf (scope: 'global' | 'pool'): readonly Directive[] {
  return DIRECTIVES.filter(d => d.scope === scope)
}
