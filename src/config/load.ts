// loadConfig(): read the files (ini-parser.ts) → apply the directive table per [global] / pool
// section (parse each value, collect errors and notices) → fill defaults, resolve paths, map the
// php_value settings node-fpm understands → cross-field rules (validate.ts) → deep-freeze.
// Synchronous: it runs once at start-up (and for -t). Never throws for a bad configuration: every
// problem comes back in `errors`, each message a complete line to print.

import fs from 'node:fs'
import path from 'node:path'
import { ConfigError } from '../common/errors.ts'
import type { ConfigLocation } from '../common/errors.ts'
import { directivesOf, findArrayDirective, findDirective } from './directives.ts'
import type { Directive } from './directives.ts'
import { readConfigFile, readInclude } from './ini-parser.ts'
import type { IniItem, ReadResult } from './ini-parser.ts'
import type { ConfigNotice, DirectiveValue, FpmConfig, GlobalConfig, PoolConfig } from './types.ts'
import { expandPool, fail, ok, parseBoolean, parseInteger, parseSize } from './values.ts'
import type { Parsed } from './values.ts'
import { validateGlobal, validatePool, validatePools } from './validate.ts'
import type { GlobalDraft, Issues, PoolDraft } from './validate.ts'

export type { ConfigNotice } from './types.ts'

export interface LoadOptions {
  /** The main file (-y), php-fpm.conf style; relative to cwd. Without it: <prefix>/pools.d/*.conf. */
  readonly configFile?: string | null
  /** -p: must be an existing directory; relative to cwd. Without it, cwd is the prefix. */
  readonly prefix?: string | null
  readonly cwd: string
  /** For ${NAME} expansion and env[X] = $NAME. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** -t. Start-up and -t check the same things today (php's -t-only checks are errors here too). */
  readonly test?: boolean
}

export type LoadResult =
  | { readonly ok: true, readonly config: FpmConfig, readonly notices: ConfigNotice[] }
  | { readonly ok: false, readonly errors: ConfigError[], readonly notices: ConfigNotice[] }

/** The pool files read when no main file is given. */
export const DEFAULT_POOLS_PATTERN = 'pools.d/*.conf'

/** What was written in one scope ([global] or one pool), before defaults. */
interface Scope {
  /** null for [global]. */
  readonly name: string | null
  readonly location: ConfigLocation
  readonly values: Map<string, { readonly value: DirectiveValue, readonly location: ConfigLocation }>
  readonly broken: Set<string>
  readonly env: Map<string, string>
  readonly phpValues: Map<string, string>
  readonly phpAdminValues: Map<string, string>
  readonly suppressPaths: string[]
}

export function loadConfig (opts: LoadOptions): LoadResult {
  const prefix = path.resolve(opts.cwd, opts.prefix ?? '.')
  if (!isDirectory(prefix)) {
    return fault([new ConfigError('FPM_ERR_CONFIG', `the global prefix '${prefix}' does not exist or is not a directory`)], [])
  }
  const file = opts.configFile === undefined || opts.configFile === null ? null : path.resolve(opts.cwd, opts.configFile)
  const ctx = { prefix, env: opts.env }
  const read: ReadResult = file === null ? readInclude(DEFAULT_POOLS_PATTERN, null, ctx) : readConfigFile(file, ctx)
  const issues: Issues = { errors: [...read.errors], notices: [...read.notices] }
  if (issues.errors.some(e => e.code === 'FPM_ERR_CONFIG')) return fault(issues.errors, issues.notices)

  const { global, pools } = applyItems(read.items, opts.env, issues)
  const globalDraft = buildGlobal(global, prefix)
  validateGlobal(globalDraft, facts(global), issues)
  const poolDrafts = pools.map(scope => {
    const draft = buildPool(scope, prefix)
    validatePool(draft, facts(scope), issues)
    return draft
  })
  validatePools(globalDraft, poolDrafts, issues)
  if (issues.errors.length > 0) return fault(issues.errors, issues.notices)
  const config: FpmConfig = { file, prefix, global: globalDraft as GlobalConfig, pools: poolDrafts as PoolConfig[] }
  return { ok: true, config: deepFreeze(config), notices: issues.notices }
}

function fault (errors: ConfigError[], notices: ConfigNotice[]): LoadResult {
  return { ok: false, errors, notices }
}

function facts (scope: Scope): { set: ReadonlySet<string>, broken: ReadonlySet<string> } {
  return { set: new Set([...scope.values.keys(), ...scope.broken]), broken: scope.broken }
}

function newScope (name: string | null, location: ConfigLocation): Scope {
  return { name, location, values: new Map(), broken: new Set(), env: new Map(), phpValues: new Map(), phpAdminValues: new Map(), suppressPaths: [] }
}

/** Walk the items: sections select [global] or a pool (re-opened by name, case-insensitively). */
function applyItems (items: readonly IniItem[], env: LoadOptions['env'], issues: Issues): { global: Scope, pools: Scope[] } {
  const global = newScope(null, { file: '', line: 0 })
  const pools: Scope[] = []
  let current = global
  for (const item of items) {
    const location = { file: item.file, line: item.line }
    if (item.type === 'section') {
      if (item.name.toLowerCase() === 'global') {
        current = global
        continue
      }
      const lower = item.name.toLowerCase()
      let pool = pools.find(p => p.name?.toLowerCase() === lower)
      if (pool === undefined) {
        pool = newScope(item.name, location)
        pools.push(pool)
      }
      current = pool
    } else if (item.key === null) {
      applyScalar(current, item.name, item.value, location, issues)
    } else {
      applyArray(current, item.name, item.key, item.value, location, env, issues)
    }
  }
  return { global, pools }
}

// Kinds that php parses with fpm_conf_set_string, which expands $pool.
const POOL_EXPANDED = new Set(['string', 'path', 'list'])

function applyScalar (scope: Scope, name: string, raw: string, location: ConfigLocation, issues: Issues): void {
  const where = `[${location.file}:${location.line}]`
  const d = findDirective(scope.name === null ? 'global' : 'pool', name)
  if (d === undefined) {
    issues.errors.push(new ConfigError('FPM_ERR_CONFIG_UNKNOWN_DIRECTIVE', `${where} unknown entry '${name}'`, { location, pool: scope.name }))
    return
  }
  const expanded = POOL_EXPANDED.has(d.kind) ? expandPool(raw, scope.name) : ok(raw)
  const parsed = expanded.ok ? d.parse(expanded.value) : expanded
  if (!parsed.ok) {
    issues.errors.push(new ConfigError('FPM_ERR_CONFIG_VALUE', `${where} unable to parse value for entry '${d.name}': ${parsed.reason}`, { location, pool: scope.name }))
    scope.broken.add(d.name)
    return
  }
  scope.broken.delete(d.name)
  scope.values.set(d.name, { value: parsed.value, location })
  noticeIfIgnored(d, parsed.value, where, issues)
}

function noticeIfIgnored (d: Directive, value: DirectiveValue, where: string, issues: Issues): void {
  if (d.notice === null || (d.noticeWhen !== null && !d.noticeWhen(value))) return
  issues.notices.push({ level: 'notice', message: `${where} '${d.name}' ${d.notice}` })
}

/**
 * php_value keys node-fpm maps onto its own settings, with their parsers (sizes in bytes,
 * max_execution_time in seconds). They are checked where they are written.
 */
const MAPPED_PHP_VALUES: Readonly<Record<string, (raw: string) => Parsed<number>>> = {
  // -1 is php's "no limit": Node's default heap.
  memory_limit: raw => raw.trim() === '-1' ? ok(0) : parseSize(raw.trim()),
  post_max_size: raw => parseSize(raw.trim()),
  max_execution_time: raw => {
    const n = parseInteger(raw.trim())
    return n.ok && n.value < 0 ? fail('is not a valid number (greater or equal than zero)') : n
  }
}

function applyArray (scope: Scope, name: string, key: string, raw: string, location: ConfigLocation,
  env: LoadOptions['env'], issues: Issues): void {
  const where = `[${location.file}:${location.line}]`
  const error = (code: 'FPM_ERR_CONFIG_UNKNOWN_DIRECTIVE' | 'FPM_ERR_CONFIG_VALUE', message: string): void => {
    issues.errors.push(new ConfigError(code, `${where} ${message}`, { location, pool: scope.name }))
  }
  const d = findArrayDirective(name)
  if (d === undefined) return error('FPM_ERR_CONFIG_UNKNOWN_DIRECTIVE', `unknown directive '${name}'`)
  if (name === 'access.suppress_path') {
    // php reports both mistakes of one line.
    if (key !== '') error('FPM_ERR_CONFIG_VALUE', "Keys provided to field 'access.suppress_path' are ignored")
    if (!raw.startsWith('/')) error('FPM_ERR_CONFIG_VALUE', "Values provided to field 'access.suppress_path' must begin with '/'")
    if (key !== '' || !raw.startsWith('/')) return
  } else if (key === '') {
    return error('FPM_ERR_CONFIG_VALUE', `You must provide a key for field '${name}'`)
  }
  if (scope.name === null) return error('FPM_ERR_CONFIG_VALUE', 'Array are not allowed in the global section')
  if (name === 'env' && raw === '') return error('FPM_ERR_CONFIG_VALUE', 'empty value')

  const isFlag = name === 'php_flag' || name === 'php_admin_flag'
  const value: Parsed<string> = isFlag
    ? mapParsed(parseBoolean(raw), b => b ? '1' : '0')
    : expandPool(raw, scope.name)
  const mapped = MAPPED_PHP_VALUES[key]
  const checked = value.ok && !isFlag && name !== 'env' && mapped !== undefined ? mapParsed(mapped(value.value), () => value.value) : value
  if (!checked.ok) return error('FPM_ERR_CONFIG_VALUE', `error while parsing '${name}[${key}]' : ${checked.reason}`)
  noticeIfIgnored(d, checked.value, where, issues)
  switch (name) {
    case 'env':
      // php resolves `$NAME` when it builds the worker environment; we do it once, here.
      scope.env.set(key, checked.value.startsWith('$') ? env[checked.value.slice(1)] ?? '' : checked.value)
      break
    case 'php_value':
    case 'php_flag':
      scope.phpValues.set(key, checked.value)
      break
    case 'php_admin_value':
    case 'php_admin_flag':
      scope.phpAdminValues.set(key, checked.value)
      break
    case 'access.suppress_path':
      scope.suppressPaths.push(checked.value)
      break
  }
}

function mapParsed<A, B> (p: Parsed<A>, f: (a: A) => B): Parsed<B> {
  return p.ok ? ok(f(p.value)) : p
}

/** Put every directive of a scope (written or default) into a draft object, at its field. */
function fill (scope: Scope, kind: 'global' | 'pool', draft: Record<string, unknown>, ignored: Record<string, DirectiveValue>,
  resolve: (d: Directive, value: string) => string): void {
  for (const d of directivesOf(kind)) {
    if (d.kind === 'array') continue
    const written = scope.values.get(d.name)
    let value = written === undefined ? d.default : written.value
    // An empty path is php's "unset".
    if (d.kind === 'path' && value === '') value = null
    if (d.kind === 'path' && typeof value === 'string' && written !== undefined) value = resolve(d, value)
    if (d.field === null) {
      if (written !== undefined) ignored[d.name] = value
      continue
    }
    setField(draft, d.field, d.toField(value))
  }
}

function buildGlobal (scope: Scope, prefix: string): GlobalDraft {
  const draft: Record<string, unknown> = {}
  const ignored: Record<string, DirectiveValue> = {}
  // 'stderr' is a keyword, not a file name.
  fill(scope, 'global', draft, ignored, (d, v) => d.name === 'error_log' && v === 'stderr' ? v : path.resolve(prefix, v))
  draft.ignored = ignored
  return draft as unknown as GlobalDraft
}

function buildPool (scope: Scope, globalPrefix: string): PoolDraft {
  const written = scope.values.get('prefix')?.value
  const prefix = typeof written === 'string' && written !== '' ? path.resolve(globalPrefix, written) : globalPrefix
  // Keys in types.ts order, so that every pool object has the same shape.
  const draft: Record<string, unknown> = {
    name: scope.name,
    file: scope.location.file,
    line: scope.location.line,
    prefix,
    listen: {},
    pm: {},
    root: null,
    handler: null,
    limitExtensions: [],
    request: {},
    clearEnv: true,
    env: Object.fromEntries(scope.env),
    phpValues: Object.fromEntries(scope.phpValues),
    phpAdminValues: Object.fromEntries(scope.phpAdminValues),
    heapLimitMb: 0,
    heapSoftLimitBytes: 0,
    ping: {},
    access: { log: null, format: null, suppressPaths: [...scope.suppressPaths] },
    slowlog: {},
    ignored: {}
  }
  const ignored: Record<string, DirectiveValue> = {}
  fill(scope, 'pool', draft, ignored, (d, v) => {
    if (d.name === 'prefix') return prefix
    if (d.relativeTo === 'root-or-prefix') {
      const root = draft.root
      return path.resolve(typeof root === 'string' ? root : prefix, v)
    }
    const resolved = path.resolve(d.relativeTo === 'global-prefix' ? globalPrefix : prefix, v)
    // The handler is relative to the real root, so that symlinked roots behave as the listener sees them.
    return d.name === 'root' && isDirectory(resolved) ? fs.realpathSync(resolved) : resolved
  })
  draft.prefix = prefix // the effective one, also when the pool sets none
  draft.ignored = ignored
  const pool = draft as unknown as PoolDraft
  applyPhpValueMappings(scope, pool)
  return pool
}

/**
 * php settings that have a node-fpm meaning, used when node-fpm's own directive is not written.
 * php_admin_value wins over php_value (it is the locked one in php). post_max_size alone caps the
 * body, as in php: upload_max_filesize limits each uploaded file inside it, which is the handler's
 * business (it parses multipart), so it maps to nothing.
 */
function applyPhpValueMappings (scope: Scope, pool: PoolDraft): void {
  const phpSetting = (key: string): number | null => {
    const raw = scope.phpAdminValues.get(key) ?? scope.phpValues.get(key)
    const parse = MAPPED_PHP_VALUES[key]
    if (raw === undefined || parse === undefined) return null
    const parsed = parse(raw)
    return parsed.ok ? parsed.value : null
  }
  const memory = phpSetting('memory_limit')
  if (!scope.values.has('pm.heap_limit') && memory !== null) pool.heapLimitMb = Math.ceil(memory / (1024 * 1024))
  const post = phpSetting('post_max_size')
  if (!scope.values.has('request.body_max_size') && post !== null) pool.request.bodyMaxBytes = post
  const seconds = phpSetting('max_execution_time')
  if (!scope.values.has('request_terminate_timeout') && seconds !== null) pool.request.terminateTimeoutMs = seconds * 1000
}

function setField (target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.')
  let obj = target
  for (const part of parts.slice(0, -1)) {
    const next = obj[part]
    if (typeof next === 'object' && next !== null) {
      obj = next as Record<string, unknown>
    } else {
      const created: Record<string, unknown> = {}
      obj[part] = created
      obj = created
    }
  }
  obj[parts[parts.length - 1] as string] = value
}

/** Read a dotted field path (the inverse of setField), for the dump and the tests. */
export function getField (source: object, dotted: string): unknown {
  let value: unknown = source
  for (const part of dotted.split('.')) {
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined
  }
  return value
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function isDirectory (p: string): boolean {
  try {
    return fs.statSync(p).isDirectory()
  } catch {
    return false
  }
}
