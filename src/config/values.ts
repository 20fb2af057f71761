// Value parsers for configuration directives (php's fpm_conf_set_* family) and the `listen`
// address parser. A parser returns the value or a short reason; the loader adds `[file:line]` and
// the directive name. Nothing here reads files or knows about pools, except parseListenAddress,
// which needs the prefix to resolve a relative unix socket path.

import path from 'node:path'
import { FpmError } from '../common/errors.ts'
import type { ListenAddress } from './types.ts'

export type Parsed<T> = { readonly ok: true, readonly value: T } | { readonly ok: false, readonly reason: string }

export function ok<T> (value: T): Parsed<T> {
  return { ok: true, value }
}

export function fail<T> (reason: string): Parsed<T> {
  return { ok: false, reason }
}

/** php's integer parser: an optional leading '-' then digits. php accepts an empty string as 0; we don't. */
export function parseInteger (raw: string): Parsed<number> {
  if (!/^-?[0-9]+$/.test(raw)) return fail('is not a valid number (greater or equal than zero)')
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) return fail('is not a valid number (greater or equal than zero)')
  return ok(n)
}

const TRUE_WORDS = new Set(['1', 'yes', 'on', 'true'])
const FALSE_WORDS = new Set(['', '0', 'no', 'off', 'false', 'none', 'null'])

/**
 * php's boolean words, case-insensitive, whether they come bare, quoted or through ${ENV}
 * (php 8.2.18+ accepts all three since GH-13563). Anything else, e.g. `2`, is refused.
 */
export function parseBoolean (raw: string): Parsed<boolean> {
  const word = raw.trim().toLowerCase()
  if (TRUE_WORDS.has(word)) return ok(true)
  if (FALSE_WORDS.has(word)) return ok(false)
  return fail('invalid boolean value')
}

const TIME_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A time value in milliseconds: digits with an optional unit s, m, h, d (a bare number is seconds,
 * as in php). `ms` is a node-fpm extension: our timers are finer than php's one-second heartbeat.
 * Stricter than php's atoi: `1.5m` or `abc` are refused instead of read as 60 s and 0 s.
 */
export function parseTime (raw: string): Parsed<number> {
  const m = /^([0-9]+)([a-z]*)$/i.exec(raw)
  if (m === null) return fail('invalid time value')
  const unit = (m[2] ?? '').toLowerCase()
  const factor = unit === '' ? 1000 : TIME_UNITS_MS[unit]
  if (factor === undefined) return fail('unknown suffix used in time value')
  const n = Number(m[1]) * factor
  if (!Number.isSafeInteger(n)) return fail('invalid time value')
  return ok(n)
}

/** A time in milliseconds as php's dump prints it: `Ns`, or `Nms` when not whole seconds. */
export function formatTime (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** A size in bytes: digits with an optional K, M or G (powers of 1024, case-insensitive, as php.ini). */
export function parseSize (raw: string): Parsed<number> {
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(raw)
  if (m === null) return fail('invalid size value')
  const factor = SIZE_UNITS[(m[2] ?? '').toLowerCase()]
  if (factor === undefined) return fail('unknown suffix used in size value')
  const n = Number(m[1]) * factor
  if (!Number.isSafeInteger(n)) return fail('invalid size value')
  return ok(n)
}

/** Bytes in the largest unit that divides them exactly: 131072 → `128K`. */
export function formatSize (bytes: number): string {
  if (bytes === 0) return '0'
  for (const [unit, factor] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes % factor === 0) return `${bytes / factor}${unit}`
  }
  return String(bytes)
}

/** A unix permission mode written in octal, e.g. `0660` (php keeps the string and reads it base 8). */
export function parseOctalMode (raw: string): Parsed<number> {
  if (!/^[0-7]{1,4}$/.test(raw)) return fail('invalid octal mode')
  return ok(Number.parseInt(raw, 8))
}

export function formatOctalMode (mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

/** A list: comma-separated (listen.allowed_clients) or space/tab-separated (security.limit_extensions). */
export function parseList (raw: string, separator: 'comma' | 'space'): readonly string[] {
  const parts = separator === 'comma' ? raw.split(',') : raw.split(/[ \t]+/)
  return parts.map(s => s.trim()).filter(s => s !== '')
}

/**
 * Replace every `$pool` with the pool name (php's fpm_conf_expand_pool_name), anywhere in a string
 * value of a pool directive or array entry. In [global] there is no pool: php refuses the value.
 */
export function expandPool (value: string, pool: string | null): Parsed<string> {
  if (!value.includes('$pool')) return ok(value)
  if (pool === null) return fail("Can't use '$pool' when the pool is not defined")
  return ok(value.replaceAll('$pool', pool))
}

/** sizeof(sockaddr_un.sun_path) on Linux: a path must be shorter (room for the NUL). */
export const UNIX_PATH_MAX = 108

/**
 * Parse a `listen` value as php-fpm does (fpm_sockets.c): a Windows named pipe (`\\.\pipe\name`),
 * else TCP when it contains ':' or is only digits (the port is after the last ':', brackets around
 * an IPv6 host are stripped, a bare port means every address: host null), else a unix socket path,
 * resolved against `prefix` when relative. Throws FpmError FPM_ERR_LISTEN_ADDRESS with php's
 * message (without the `[pool x]` prefix, which the caller adds).
 */
export function parseListenAddress (value: string, prefix: string): ListenAddress {
  if (/^\\\\[.?]\\pipe\\./i.test(value)) return { kind: 'pipe', path: value }
  const colon = value.lastIndexOf(':')
  if (colon === -1 && /^[0-9]+$/.test(value)) {
    return { kind: 'tcp', host: null, port: parsePort(value) }
  }
  if (colon !== -1) {
    const port = parsePort(value.slice(colon + 1))
    let host = value.slice(0, colon)
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
    // php hands an empty host to getaddrinfo, which fails at bind time; say so now.
    if (host === '') throw new FpmError('FPM_ERR_LISTEN_ADDRESS', `invalid listen address '${value}': missing host before ':'`)
    return { kind: 'tcp', host, port }
  }
  if (value === '') throw new FpmError('FPM_ERR_LISTEN_ADDRESS', 'no listen address have been defined!')
  const socketPath = path.resolve(prefix, value)
  const length = Buffer.byteLength(socketPath)
  if (length >= UNIX_PATH_MAX) {
    throw new FpmError('FPM_ERR_LISTEN_ADDRESS',
      `cannot bind to UNIX socket '${socketPath}' as path is too long (found length: ${length}, maximal length: ${UNIX_PATH_MAX})`)
  }
  return { kind: 'unix', path: socketPath }
}

function parsePort (text: string): number {
  // Stricter than php's atoi ('9000abc' is 9000 there): the whole port must be digits.
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : 0
  if (port < 1 || port > 65535) throw new FpmError('FPM_ERR_LISTEN_ADDRESS', `invalid port value '${text}'`)
  return port
}
