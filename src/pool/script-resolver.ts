// Which module serves a request (php's SCRIPT_FILENAME handling, php-fpm.md §11.7-11.8).
// The pool either names one front controller (`handler`) for every request, or maps
// SCRIPT_FILENAME into its document root (`root`): the real path must stay inside the root
// (no `..` or symlink escape) and end in one of security.limit_extensions.
// File-system answers are cached briefly (like php's realpath cache) so the main thread does not
// make blocking stat calls per request.

import { performance } from 'node:perf_hooks'
import { isAbsolute, sep } from 'node:path'
import type { PoolConfig } from '../config/types.ts'

// Not `import ... from 'node:fs'`: an ESM import of node:fs builds its namespace, which loads every
// lazy part of the module (promises, streams, watchers, readline...): 0.7 MiB more for each thread
// that resolves scripts itself (pm.accept = threads).
const { realpathSync, statSync } = process.getBuiltinModule('node:fs')

export type ScriptResolution =
  | { readonly kind: 'ok', readonly script: string }
  | { readonly kind: 'not-found', readonly reason: string }
  | { readonly kind: 'denied', readonly script: string }

interface CacheEntry {
  readonly name: string
  readonly result: ScriptResolution
  readonly expiresAtMs: number
}

const CACHE_TTL_MS = 2000
const CACHE_MAX_ENTRIES = 10_000

export class ScriptResolver {
  readonly #root: string | null
  readonly #rootPrefix: string
  readonly #handler: string | null
  readonly #extensions: readonly string[]
  readonly #cache = new Map<string, CacheEntry>()
  #last: CacheEntry | null = null
  readonly #handlerResult: ScriptResolution | null

  constructor (config: Pick<PoolConfig, 'root' | 'handler' | 'limitExtensions'>) {
    this.#root = config.root
    this.#rootPrefix = config.root === null ? '' : config.root.endsWith(sep) ? config.root : config.root + sep
    this.#handler = config.handler
    this.#extensions = config.limitExtensions
    this.#handlerResult = this.#handler === null ? null : { kind: 'ok', script: this.#handler }
  }

  /** `scriptFilename`: SCRIPT_FILENAME (or PATH_TRANSLATED) as the web server sent it; may be undefined. */
  resolve (scriptFilename: string | undefined): ScriptResolution {
    if (this.#handlerResult !== null) return this.#handlerResult
    if (scriptFilename === undefined || scriptFilename === '') return { kind: 'not-found', reason: 'no SCRIPT_FILENAME' }
    const now = performance.now()
    // The same script as the last request, most often: a string compare, not a hash of a new string.
    const last = this.#last
    if (last !== null && last.expiresAtMs > now && last.name === scriptFilename) return last.result
    let cached = this.#cache.get(scriptFilename)
    if (cached === undefined || cached.expiresAtMs <= now) {
      cached = { name: scriptFilename, result: this.#resolveUncached(scriptFilename), expiresAtMs: now + CACHE_TTL_MS }
      if (this.#cache.size >= CACHE_MAX_ENTRIES) this.#cache.clear()
      this.#cache.set(scriptFilename, cached)
    }
    this.#last = cached
    return cached.result
  }

  #resolveUncached (raw: string): ScriptResolution {
    const path = stripProxyPrefix(raw)
    if (this.#root === null || !isAbsolute(path)) return { kind: 'not-found', reason: `'${path}' is not an absolute path` }
    let real: string
    try {
      real = realpathSync(path)
    } catch {
      return { kind: 'not-found', reason: `'${path}' does not exist` }
    }
    if (!real.startsWith(this.#rootPrefix)) return { kind: 'not-found', reason: `'${path}' is outside the root '${this.#root}'` }
    try {
      if (!statSync(real).isFile()) return { kind: 'not-found', reason: `'${path}' is not a file` }
    } catch {
      return { kind: 'not-found', reason: `'${path}' cannot be read` }
    }
    if (!hasAllowedExtension(real, this.#extensions)) return { kind: 'denied', script: real }
    return { kind: 'ok', script: real }
  }
}

/** php compares the end of the resolved path, case-sensitively, and the path must be longer than the suffix. */
export function hasAllowedExtension (path: string, extensions: readonly string[]): boolean {
  if (extensions.length === 0) return true
  for (const ext of extensions) {
    if (path.length > ext.length && path.endsWith(ext)) return true
  }
  return false
}

/** Apache's mod_proxy_fcgi sends `proxy:fcgi://host:port/path` (and may append `?query`). */
function stripProxyPrefix (path: string): string {
  if (!path.startsWith('proxy:')) return path
  const m = /^proxy:(?:fcgi|balancer):\/\/[^/]*(\/[^?]*)/.exec(path)
  return m?.[1] ?? path
}
