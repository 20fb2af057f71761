// Reader for php-fpm's ini dialect (php-fpm.md §3): like fpm_conf_load_ini_file, every physical
// line is parsed on its own (a value never spans lines). Yields a flat list of sections and
// `name[key] = value` entries with their file and line, `include = glob` expanded in place
// (sorted, relative to the prefix, at most 5 files deep). It knows nothing about directives:
// load.ts applies the table. Deviations from Zend's scanner: `#` starts a full-line comment
// (removed from php 7, asked for by our users), bare PHP constants and bitwise expressions
// (`E_ALL & ~E_NOTICE`) are kept as text, not evaluated.

import fs from 'node:fs'
import path from 'node:path'
import { getSystemErrorMessage } from 'node:util'
import { ConfigError } from '../common/errors.ts'
import type { ConfigLocation } from '../common/errors.ts'
import type { ConfigNotice } from './types.ts'

export type IniItem =
  | { readonly type: 'section', readonly name: string, readonly file: string, readonly line: number }
  /** key: null for `name = value`, the text between the brackets for `name[key] = value` ('' for `[]`). */
  | { readonly type: 'entry', readonly name: string, readonly key: string | null, readonly value: string, readonly file: string, readonly line: number }

export type LineResult =
  | { readonly kind: 'blank' }
  | { readonly kind: 'section', readonly name: string }
  | { readonly kind: 'entry', readonly name: string, readonly key: string | null, readonly value: string }
  | { readonly kind: 'error', readonly reason: string }

export type Env = Readonly<Record<string, string | undefined>>

/** php nests includes at most this deep, counting the main file (fpm_conf.c: ini_recursion > 4). */
export const MAX_INCLUDE_DEPTH = 5

// Zend turns these bare words into '1' / '' before FPM sees them (so `ping.response = yes` is '1').
const BARE_TRUE = new Set(['true', 'on', 'yes'])
const BARE_FALSE = new Set(['false', 'off', 'no', 'none', 'null'])

/** Parse one physical line. `${NAME}` / `${NAME:-default}` are expanded from `env`. */
export function parseLine (text: string, env: Env): LineResult {
  const t = text.trim()
  if (t === '' || t.startsWith(';') || t.startsWith('#')) return { kind: 'blank' }
  if (t.startsWith('[')) return parseSection(t)
  const eq = t.indexOf('=')
  if (eq === -1) {
    const name = (t.split(';')[0] ?? '').trim()
    return { kind: 'error', reason: `syntax error, expecting '=' after '${name}'` }
  }
  const left = t.slice(0, eq).trim()
  if (left === '') return { kind: 'error', reason: "syntax error, unexpected '='" }
  let name = left
  let key: string | null = null
  const open = left.indexOf('[')
  if (open !== -1) {
    const close = left.indexOf(']', open)
    if (close !== left.length - 1) return { kind: 'error', reason: `syntax error, expecting ']' after '${left}'` }
    name = left.slice(0, open).trim()
    key = left.slice(open + 1, close).trim()
    if (name === '') return { kind: 'error', reason: `syntax error, unexpected '['` }
  }
  const bad = /[;"'[\]{}$]/.exec(name)
  if (bad !== null) return { kind: 'error', reason: `syntax error, unexpected '${bad[0]}' in '${name}'` }
  const value = parseValue(t.slice(eq + 1), env)
  if (!value.ok) return { kind: 'error', reason: value.reason }
  return { kind: 'entry', name, key, value: value.value }
}

function parseSection (t: string): LineResult {
  const close = t.indexOf(']')
  if (close === -1) return { kind: 'error', reason: "syntax error, unexpected end of line, expecting ']'" }
  const name = t.slice(1, close).trim()
  const rest = t.slice(close + 1).trim()
  if (rest !== '' && !rest.startsWith(';')) return { kind: 'error', reason: `syntax error, unexpected '${rest}' after section [${name}]` }
  if (name === '') return { kind: 'error', reason: 'syntax error, empty section name' }
  return { kind: 'section', name }
}

type ValueResult = { readonly ok: true, readonly value: string } | { readonly ok: false, readonly reason: string }

/**
 * A value: a sequence of bare text, "double-quoted" (\" \\ \$ unescaped, ${...} expanded, other
 * backslashes kept) and 'single-quoted' (raw) segments, up to a `;` outside quotes. Segments are
 * concatenated and bare text is trimmed at both ends, as Zend does: `a "b" c` is `abc`.
 */
function parseValue (src: string, env: Env): ValueResult {
  let out = ''
  let segments = 0
  let quoted = false
  let bare = ''
  let i = 0
  while (i < src.length) {
    const c = src[i]
    if (c === ';') break
    if (c === '"') {
      const r = readDoubleQuoted(src, i + 1, env)
      if (!r.ok) return r
      out += r.value
      i = r.end
      segments++
      quoted = true
      continue
    }
    if (c === "'") {
      const close = src.indexOf("'", i + 1)
      if (close === -1) return { ok: false, reason: 'syntax error, unterminated single-quoted string' }
      out += src.slice(i + 1, close)
      i = close + 1
      segments++
      quoted = true
      continue
    }
    let j = i
    while (j < src.length && !';"\''.includes(src[j] as string)) j++
    const raw = src.slice(i, j).trim()
    i = j
    if (raw === '') continue
    if (raw.includes('=')) return { ok: false, reason: "syntax error, unexpected '='" }
    const expanded = expandVariables(raw, env)
    if (!expanded.ok) return expanded
    out += expanded.value
    bare = raw
    segments++
  }
  if (segments === 1 && !quoted) {
    const word = bare.toLowerCase()
    if (BARE_TRUE.has(word)) return { ok: true, value: '1' }
    if (BARE_FALSE.has(word)) return { ok: true, value: '' }
  }
  return { ok: true, value: out }
}

function readDoubleQuoted (src: string, start: number, env: Env): { ok: true, value: string, end: number } | { ok: false, reason: string } {
  let buf = ''
  let j = start
  while (j < src.length) {
    const ch = src[j] as string
    if (ch === '\\' && j + 1 < src.length && '"\\$'.includes(src[j + 1] as string)) {
      buf += src[j + 1]
      j += 2
      continue
    }
    if (ch === '"') return { ok: true, value: buf, end: j + 1 }
    if (ch === '$' && src[j + 1] === '{') {
      const close = src.indexOf('}', j + 2)
      if (close === -1) return { ok: false, reason: "syntax error, unterminated '${'" }
      buf += lookup(src.slice(j + 2, close), env)
      j = close + 1
      continue
    }
    buf += ch
    j++
  }
  return { ok: false, reason: 'syntax error, unterminated double-quoted string' }
}

function expandVariables (raw: string, env: Env): ValueResult {
  let out = ''
  let i = 0
  for (;;) {
    const open = raw.indexOf('${', i)
    if (open === -1) return { ok: true, value: out + raw.slice(i) }
    const close = raw.indexOf('}', open + 2)
    if (close === -1) return { ok: false, reason: "syntax error, unterminated '${'" }
    out += raw.slice(i, open) + lookup(raw.slice(open + 2, close), env)
    i = close + 1
  }
}

/** `NAME` or `NAME:-fallback` (php 8.3): the variable, else the fallback, else ''. */
function lookup (expr: string, env: Env): string {
  const sep = expr.indexOf(':-')
  const name = (sep === -1 ? expr : expr.slice(0, sep)).trim()
  const value = env[name]
  if (value !== undefined) return value
  return sep === -1 ? '' : expr.slice(sep + 2)
}

export interface ReadContext {
  /** Relative include patterns are resolved against it (php: the global prefix). */
  readonly prefix: string
  readonly env: Env
}

export interface ReadResult {
  readonly items: IniItem[]
  readonly errors: ConfigError[]
  readonly notices: ConfigNotice[]
}

/** Read a main configuration file (-y) and everything it includes. */
export function readConfigFile (file: string, ctx: ReadContext): ReadResult {
  const out: ReadResult = { items: [], errors: [], notices: [] }
  readFile(file, 1, null, false, ctx, out)
  return out
}

/**
 * Expand an include pattern as if it stood at `from` (null: no main file, as for the default
 * `pools.d/*.conf`) and read the matching files.
 */
export function readInclude (pattern: string, from: ConfigLocation | null, ctx: ReadContext): ReadResult {
  const out: ReadResult = { items: [], errors: [], notices: [] }
  include(pattern, from, 2, ctx, out)
  return out
}

function readFile (file: string, depth: number, from: ConfigLocation | null, included: boolean, ctx: ReadContext, out: ReadResult): void {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    const reason = systemErrorText(err)
    const where = from === null ? '' : ` from ${from.file} at line ${from.line}`
    out.errors.push(included
      ? new ConfigError('FPM_ERR_CONFIG_INCLUDE', `Unable to include ${file}${where}: ${reason}`, { location: from })
      : new ConfigError('FPM_ERR_CONFIG', `failed to open configuration file '${file}': ${reason}`))
    return
  }
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = n + 1
    const parsed = parseLine(lines[n] as string, ctx.env)
    switch (parsed.kind) {
      case 'blank':
        break
      case 'error':
        out.errors.push(new ConfigError('FPM_ERR_CONFIG_SYNTAX', `[${file}:${line}] ${parsed.reason}`, { location: { file, line } }))
        break
      case 'section':
        out.items.push({ type: 'section', name: parsed.name, file, line })
        break
      case 'entry':
        if (parsed.name === 'include' && parsed.key === null) include(parsed.value, { file, line }, depth + 1, ctx, out)
        else out.items.push({ type: 'entry', name: parsed.name, key: parsed.key, value: parsed.value, file, line })
        break
    }
  }
}

function include (pattern: string, from: ConfigLocation | null, depth: number, ctx: ReadContext, out: ReadResult): void {
  const where = from === null ? '' : ` from ${from.file} at line ${from.line}`
  const location = from === null ? {} : { location: from }
  if (depth > MAX_INCLUDE_DEPTH) {
    const prefix = from === null ? '' : `[${from.file}:${from.line}] `
    out.errors.push(new ConfigError('FPM_ERR_CONFIG_INCLUDE', `${prefix}failed to include more than ${MAX_INCLUDE_DEPTH} files recursively`, location))
    return
  }
  const absolute = path.resolve(ctx.prefix, pattern)
  let matches: string[]
  try {
    // glob(3) order (php sorts; bug68391 tests it): plain code-unit order, as in the C locale.
    matches = fs.globSync(absolute).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  } catch (err) {
    out.errors.push(new ConfigError('FPM_ERR_CONFIG_INCLUDE', `Unable to globalize '${absolute}' (${systemErrorText(err)})${where}.`, location))
    return
  }
  const files = matches.filter(f => !isDirectory(f))
  if (files.length === 0) {
    out.notices.push({ level: 'warning', message: `Nothing matches the include pattern '${absolute}'${where}.` })
    return
  }
  for (const f of files) readFile(f, depth, from, true, ctx, out)
}

function isDirectory (file: string): boolean {
  try {
    return fs.statSync(file).isDirectory()
  } catch {
    return false
  }
}

/** php's strerror form: "No such file or directory (2)". */
export function systemErrorText (err: unknown): string {
  const e = err as { errno?: unknown, message?: unknown }
  if (typeof e.errno === 'number') {
    const text = getSystemErrorMessage(e.errno)
    return `${text.charAt(0).toUpperCase()}${text.slice(1)} (${Math.abs(e.errno)})`
  }
  return typeof e.message === 'string' ? e.message : String(err)
}
