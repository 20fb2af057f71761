// The loaded configuration: plain, frozen data that every other module reads (php's fpm_conf.h).
// Field names are the directive names in camelCase, grouped by their dotted family; the mapping
// from directive name to field lives in exactly one place, config/directives.ts.

export type LogLevel = 'debug' | 'notice' | 'warning' | 'error' | 'alert'
export type PmMode = 'static' | 'dynamic' | 'ondemand'

/** A parsed directive value, as the directive table handles it (times in ms, sizes in bytes). */
export type DirectiveValue = string | number | boolean | null | readonly string[]

/** What the loader says besides errors; `message` already carries `[file:line]` or `[pool x]`. */
export interface ConfigNotice {
  readonly level: 'notice' | 'warning'
  readonly message: string
}

/** A parsed `listen` value (php-fpm.md §2.2). Relative unix paths are already absolute. */
export type ListenAddress =
  /** host null: a bare port, meaning every address (php tries `::` then `0.0.0.0`). */
  | { readonly kind: 'tcp', readonly host: string | null, readonly port: number }
  | { readonly kind: 'unix', readonly path: string }
  /** A Windows named pipe, `\\.\pipe\name`. */
  | { readonly kind: 'pipe', readonly path: string }

export interface GlobalConfig {
  /** pid file path (absolute) or null for none. `-g` overrides it. */
  readonly pid: string | null
  /** 'stderr' (the default here: node-fpm runs in the foreground), 'syslog' is refused, else an absolute path. */
  readonly errorLog: string
  readonly logLevel: LogLevel
  readonly logLimit: number
  readonly emergencyRestartThreshold: number
  readonly emergencyRestartIntervalMs: number
  readonly processControlTimeoutMs: number
  readonly processMax: number
  /** Directives accepted for php-fpm compatibility but without effect (user, daemonize, ...), by name, when set. */
  readonly ignored: Readonly<Record<string, DirectiveValue>>
}

export interface ListenConfig {
  /** The `listen` value as written (after $pool/${ENV} expansion): used in messages and for collisions. */
  readonly address: string
  /** `address` parsed (relative unix paths resolved against the pool prefix). */
  readonly target: ListenAddress
  readonly backlog: number
  /** null means any client; unix sockets are always allowed. */
  readonly allowedClients: readonly string[] | null
  readonly owner: string | null
  readonly group: string | null
  /** unix socket permission bits, e.g. 0o660 */
  readonly mode: number
}

export interface PmConfig {
  readonly mode: PmMode
  readonly maxChildren: number
  /** dynamic: threads started at start-up. static starts maxChildren, ondemand 0 (it is forced to 0 there). */
  readonly startServers: number
  /** dynamic only (forced to 0 for ondemand). */
  readonly minSpareServers: number
  /** dynamic only (forced to 0 for ondemand). */
  readonly maxSpareServers: number
  readonly maxSpawnRate: number
  readonly processIdleTimeoutMs: number
  /** pm.max_requests; 0 (or less, as php) = no limit. */
  readonly maxRequests: number
  /** A random extra in [0, maxRequestsJitter] added to each thread's maxRequests. */
  readonly maxRequestsJitter: number
  /** Requests one thread runs at once (1: php-fpm's model). */
  readonly threadConcurrency: number
  /** pm.accept: the main thread accepts and dispatches (main), or each thread accepts and serves its own connections (threads). */
  readonly accept: 'main' | 'threads'
  /** pm.status_path: served by status/pages.ts. */
  readonly statusPath: string | null
  /** pm.status_listen: the address as written (checked at load); status/status-listener.ts serves it. */
  readonly statusListen: string | null
}

/** ping.* (status/pages.ts). `response` is null when `path` is (php clears it). */
export interface PingConfig {
  readonly path: string | null
  readonly response: string | null
}

/** access.*: the pool's access log (log/access-log.ts); the format is compiled and checked at load. */
export interface AccessLogConfig {
  /** Absolute path or null. */
  readonly log: string | null
  /**
   * The format's source (php's default when `log` is set and no format was given, else null).
   * With a `log` it compiles (log/access-format.ts compileAccessFormat); the writer compiles it again.
   */
  readonly format: string | null
  readonly suppressPaths: readonly string[]
}

/** slowlog, request_slowlog_*: src/pool/slowlog.ts. */
export interface SlowlogConfig {
  /** Absolute path or null. */
  readonly file: string | null
  readonly timeoutMs: number
  readonly traceDepth: number
}

export interface RequestLimits {
  /** Cap on the total bytes of FCGI_PARAMS of one request. */
  readonly maxParamsBytes: number
  /** Request bodies up to this size are buffered and handed to the worker whole; larger ones stream. */
  readonly bodyBufferBytes: number
  /** Cap on a request body (413 beyond it); 0 = unlimited. */
  readonly bodyMaxBytes: number
  /** request.body_timeout: longest wait for more body bytes while the body is incomplete (408); 0 = none. */
  readonly bodyTimeoutMs: number
  /** Requests that may wait in the pool's queue (request.queue_max; its default is resolved at load). */
  readonly queueMax: number
  /** Longest wait in the queue (request.queue_timeout), > 0. */
  readonly queueTimeoutMs: number
  /** request_terminate_timeout; 0 = off. */
  readonly terminateTimeoutMs: number
  /** request_terminate_timeout_track_finished: the timeout also covers work after the response (ctx.finishRequest, ctx.waitUntil). */
  readonly terminateTimeoutTrackFinished: boolean
  /** request_terminate_timeout_grace: after the abort, the time the handler gets before its thread is terminated; 0 = at once. */
  readonly terminateGraceMs: number
}

export interface PoolConfig {
  readonly name: string
  /** Where the pool section starts, for `[file:line]` messages. */
  readonly file: string
  readonly line: number
  readonly prefix: string
  readonly listen: ListenConfig
  readonly pm: PmConfig
  /** Document root (absolute, real path). Every SCRIPT_FILENAME must resolve inside it. null when only `handler` is used. */
  readonly root: string | null
  /** Front-controller module (absolute path): when set, it serves every request of the pool. */
  readonly handler: string | null
  /** Allowed script suffixes; empty = any. */
  readonly limitExtensions: readonly string[]
  readonly request: RequestLimits
  readonly clearEnv: boolean
  readonly env: Readonly<Record<string, string>>
  /** php_value / php_admin_value entries (flags normalised to '1' / '0'), readable by handlers. */
  readonly phpValues: Readonly<Record<string, string>>
  readonly phpAdminValues: Readonly<Record<string, string>>
  /** V8 heap cap for each thread (resourceLimits.maxOldGenerationSizeMb); 0 = Node's default, at most 2047 MiB. */
  readonly heapLimitMb: number
  /**
   * pm.heap_soft_limit (bytes): a thread whose heap in use after a request exceeds it is retired;
   * 0 = off. Its default (3/4 of pm.heap_limit) is resolved at load.
   */
  readonly heapSoftLimitBytes: number
  readonly ping: PingConfig
  readonly access: AccessLogConfig
  readonly slowlog: SlowlogConfig
  /** Directives accepted for php-fpm compatibility but without effect (user, chroot, ...), by name, when set. */
  readonly ignored: Readonly<Record<string, DirectiveValue>>
}

export interface FpmConfig {
  /** The main file given with -y, or null when the pools came from ./pools.d/*.conf. */
  readonly file: string | null
  readonly prefix: string
  readonly global: GlobalConfig
  readonly pools: readonly PoolConfig[]
}
