// access.format (php's fpm_log.c, php-fpm.md §6.1-6.3): compiled once into literal strings and
// small field functions, so a request's line is one pass of string concatenation, where php walks
// the format again for every request. The grammar, the checks and their warnings are php's:
// `%X` or `%{arg}X`; a braced argument only for C d e M o t T; argument cut at 128 characters;
// a `%` ending the format is dropped. php checks a format with a dry run of fpm_log_write before
// start-up; compileAccessFormat is that check (config/validate.ts) and the access log writer's
// formatter. The formatter returns the line without its '\n'; the writer adds it, skips empty
// lines and caps a line at ACCESS_LOG_BUFFER bytes (php's NOTICE "the log buffer is full (1024).
// The access log request has been truncated.").

/** What a finished request gives the formatter: plain values, read once per line. */
export interface AccessEntry {
  /** %R: address of the FastCGI client (the web server, not REMOTE_ADDR), as Node reports it; '' for a unix socket. */
  readonly remoteAddr: string
  /** %m: REQUEST_METHOD ('' if none). */
  readonly method: string
  /** %r: php's request URI: SCRIPT_NAME (not REQUEST_URI, which is %{REQUEST_URI}e), without the query string. */
  readonly uri: string
  /** %q: QUERY_STRING ('' if none). */
  readonly query: string
  /** %f: the resolved script path (SCRIPT_FILENAME) or the handler module, '' if none. */
  readonly script: string
  /** %s: response status code. */
  readonly status: number
  /** %t: when the request was accepted, epoch ms. */
  readonly startedAtMs: number
  /** %T: when the line is written, epoch ms; default Date.now() at format time. */
  readonly loggedAtMs?: number
  /** %d: request duration in whole microseconds. */
  readonly durationUs: number
  /** %C / %{total}C: CPU time of the request (user + system) over its wall time, in percent. */
  readonly cpuPercent: number
  /** %{user}C */
  readonly cpuUserPercent: number
  /** %{system}C */
  readonly cpuSystemPercent: number
  /** %M: peak memory of the request in bytes. */
  readonly memoryBytes: number
  /** %l: request CONTENT_LENGTH (0 if none). */
  readonly contentLength: number
  /** %{Name}o: a response header's value, undefined if not sent. */
  readonly responseHeaders: (name: string) => string | undefined
  /** %{NAME}e: a FastCGI param, undefined if absent. */
  readonly params: (name: string) => string | undefined
  /** %n: pool name. */
  readonly pool: string
  /** %p: the worker's id (what the status page shows as pid). %P is the server's process.pid. */
  readonly pid: number
  /** %u: the HTTP Basic auth user ('' if none). */
  readonly user: string
}

export type AccessFormatter = (e: AccessEntry) => string

export type CompiledAccessFormat =
  | { readonly ok: true, readonly format: AccessFormatter }
  | { readonly ok: false, readonly reason: string }

/** php's line buffer (FPM_LOG_BUFFER): longer lines are cut, with a NOTICE. For the writer. */
export const ACCESS_LOG_BUFFER = 1024

/** php keeps these values in fixed scoreboard fields, so it logs at most this many characters of them. */
export const ACCESS_FIELD_LIMITS = { uri: 127, query: 511, method: 15, script: 255, user: 31, pool: 31 } as const

/** Longest `%{...}` argument php keeps (its format buffer is 129 bytes). */
const MAX_ARGUMENT = 128
const DEFAULT_TIME_FORMAT = '%d/%b/%Y:%H:%M:%S %z'

type Field = (e: AccessEntry) => string

export function compileAccessFormat (format: string): CompiledAccessFormat {
  const literals: string[] = []
  const fields: Field[] = []
  let literal = ''
  const fail = (reason: string): CompiledAccessFormat => ({ ok: false, reason })
  const field = (f: Field): void => {
    literals.push(literal)
    fields.push(f)
    literal = ''
  }
  const n = format.length
  let i = 0
  while (i < n) {
    const percent = format.indexOf('%', i)
    if (percent === -1) {
      literal += format.slice(i)
      break
    }
    literal += format.slice(i, percent)
    i = percent + 1
    let arg = ''
    // php loops back into its token state after `{...}`, so `%{a}{b}t` means `%{b}t`.
    while (i < n && format[i] === '{') {
      const close = format.indexOf('}', i + 1)
      // php also refuses a `}` that ends the format: the letter is missing.
      if (close === -1 || close === n - 1) return fail('missing closing embrace in the access.format')
      arg = format.slice(i + 1, Math.min(close, i + 1 + MAX_ARGUMENT))
      i = close + 1
    }
    if (i >= n) break
    const letter = format[i] as string
    i++
    let takesArg = true
    switch (letter) {
      case '%':
        takesArg = false
        literal += '%'
        break
      case 'C': {
        const which = cpuField(arg)
        if (which === null) return fail(`only 'total', 'user' or 'system' are allowed as a modifier for %C ('${arg}')`)
        field(which)
        break
      }
      case 'd': {
        const f = durationField(arg)
        if (f === null) return fail(`only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('${arg}')`)
        field(f)
        break
      }
      case 'e': {
        if (arg === '') return fail('the name of the environment variable must be set between embraces for %e')
        const name = arg
        field(e => e.params(name) ?? '-')
        break
      }
      case 'f':
        takesArg = false
        field(e => e.script === '' ? '-' : cut(e.script, ACCESS_FIELD_LIMITS.script))
        break
      case 'l':
        takesArg = false
        field(e => String(e.contentLength))
        break
      case 'm':
        takesArg = false
        field(e => e.method === '' ? '-' : cut(e.method, ACCESS_FIELD_LIMITS.method))
        break
      case 'M': {
        const f = memoryField(arg)
        if (f === null) return fail(`only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('${arg}')`)
        field(f)
        break
      }
      case 'n':
        takesArg = false
        field(e => e.pool === '' ? '-' : cut(e.pool, ACCESS_FIELD_LIMITS.pool))
        break
      case 'o': {
        if (arg === '') return fail('the name of the header must be set between embraces for %o')
        const name = arg
        field(e => {
          const v = e.responseHeaders(name)
          return v === undefined || v === '' ? '-' : v
        })
        break
      }
      case 'p':
        takesArg = false
        field(e => String(e.pid))
        break
      case 'P':
        // The server's pid: fixed for the life of the process.
        takesArg = false
        literal += String(process.pid)
        break
      case 'q':
        takesArg = false
        field(e => cut(e.query, ACCESS_FIELD_LIMITS.query))
        break
      case 'Q':
        takesArg = false
        field(e => e.query === '' ? '' : '?')
        break
      case 'r':
        takesArg = false
        field(e => cut(e.uri, ACCESS_FIELD_LIMITS.uri))
        break
      case 'R':
        takesArg = false
        field(e => clientIp(e.remoteAddr))
        break
      case 's':
        takesArg = false
        field(e => String(e.status))
        break
      case 't': {
        const render = timeRenderer(arg === '' ? DEFAULT_TIME_FORMAT : arg)
        field(e => render(e.startedAtMs))
        break
      }
      case 'T': {
        const render = timeRenderer(arg === '' ? DEFAULT_TIME_FORMAT : arg)
        field(e => render(e.loggedAtMs ?? Date.now()))
        break
      }
      case 'u':
        takesArg = false
        field(e => cut(e.user, ACCESS_FIELD_LIMITS.user))
        break
      default:
        return fail(`Invalid token in the access.format (%${letter})`)
    }
    if (!takesArg && arg !== '') return fail(`embrace is not allowed for modifier %${letter}`)
  }
  literals.push(literal)
  return { ok: true, format: assemble(literals, fields) }
}

/** literals.length === fields.length + 1: literal, field, literal, ..., literal. */
function assemble (literals: readonly string[], fields: readonly Field[]): AccessFormatter {
  const first = literals[0] as string
  if (fields.length === 0) return () => first
  const count = fields.length
  return e => {
    let line = first
    for (let k = 0; k < count; k++) line += (fields[k] as Field)(e) + (literals[k + 1] as string)
    return line
  }
}

function cut (s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s
}

/** php prints an IPv4-mapped IPv6 peer as IPv4, and `-` for a unix socket. */
function clientIp (addr: string): string {
  if (addr === '') return '-'
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}

// php compares modifiers with strcasecmp.
function cpuField (arg: string): Field | null {
  switch (arg.toLowerCase()) {
    case '': case 'total': return e => printfFixed(e.cpuPercent, 2)
    case 'user': return e => printfFixed(e.cpuUserPercent, 2)
    case 'system': return e => printfFixed(e.cpuSystemPercent, 2)
    default: return null
  }
}

// php keeps a timeval and prints tv_sec + tv_usec / 1e6 (seconds) or tv_sec * 1000 + tv_usec / 1000
// (ms) with %.3f: the same double arithmetic here gives the same digits.
function durationField (arg: string): Field | null {
  switch (arg.toLowerCase()) {
    case '': case 'seconds':
      return e => {
        const us = Math.trunc(e.durationUs)
        const sec = Math.floor(us / 1e6)
        return printfFixed(sec + (us - sec * 1e6) / 1e6, 3)
      }
    // mili / miliseconds: php keeps the old spellings.
    case 'milli': case 'milliseconds': case 'mili': case 'miliseconds':
      return e => {
        const us = Math.trunc(e.durationUs)
        const sec = Math.floor(us / 1e6)
        return printfFixed(sec * 1000 + (us - sec * 1e6) / 1000, 3)
      }
    case 'micro': case 'microseconds':
      return e => String(Math.trunc(e.durationUs))
    default: return null
  }
}

function memoryField (arg: string): Field | null {
  switch (arg.toLowerCase()) {
    case '': case 'bytes': return e => String(e.memoryBytes)
    case 'kilo': case 'kilobytes': return e => String(Math.floor(e.memoryBytes / 1024))
    case 'mega': case 'megabytes': return e => String(Math.floor(e.memoryBytes / 1048576))
    default: return null
  }
}

/**
 * printf("%.2f") / ("%.3f"). toFixed rounds the exact binary value as glibc does, except on an
 * exact tie (x * 10^digits ends in exactly .5), which toFixed rounds up and glibc to even. An exact
 * tie is x = odd / 2^(digits+1): for 0.0625 "%.3f" gives 0.062, toFixed 0.063.
 */
export function printfFixed (x: number, digits: 2 | 3): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf'
  const scaled = x * (digits === 2 ? 8 : 16)
  if (!Number.isInteger(scaled) || scaled % 2 === 0) return x.toFixed(digits)
  const ten = digits === 2 ? 100 : 1000
  const m = Math.abs(x) * ten // k + 0.5, exact while it stays below 2^52
  if (m >= 2 ** 52) return x.toFixed(digits)
  const k = Math.floor(m)
  const units = String(k % 2 === 0 ? k : k + 1).padStart(digits + 1, '0')
  return `${x < 0 ? '-' : ''}${units.slice(0, -digits)}.${units.slice(-digits)}`
}

// ---- strftime (glibc, C locale, local time) ----

/** A broken-down local time (C's struct tm, plus the epoch second it came from). */
interface Tm {
  readonly epoch: number
  readonly year: number
  /** 0-11 */
  readonly mon: number
  readonly mday: number
  readonly hour: number
  readonly min: number
  readonly sec: number
  /** 0 = Sunday */
  readonly wday: number
  /** 0-365 */
  readonly yday: number
  /** Seconds east of UTC. */
  readonly gmtoff: number
}

type TimePart = (tm: Tm) => string

/**
 * A renderer of the strftime `format` for an epoch-ms time: php passes time_t seconds to
 * localtime(), so the text only changes once a second and the last one is kept.
 */
function timeRenderer (format: string): (ms: number) => string {
  const parts = compileStrftime(format)
  let lastSecond = NaN
  let last = ''
  return ms => {
    const second = Math.floor(ms / 1000)
    if (second !== lastSecond) {
      const tm = localTm(second)
      let out = ''
      for (const part of parts) out += typeof part === 'string' ? part : part(tm)
      last = out
      lastSecond = second
    }
    return last
  }
}

function localTm (epoch: number): Tm {
  const d = new Date(epoch * 1000)
  const year = d.getFullYear()
  const mon = d.getMonth()
  const mday = d.getDate()
  return {
    epoch,
    year,
    mon,
    mday,
    hour: d.getHours(),
    min: d.getMinutes(),
    sec: d.getSeconds(),
    wday: d.getDay(),
    yday: Math.round((Date.UTC(year, mon, mday) - Date.UTC(year, 0, 1)) / 86_400_000),
    gmtoff: -Math.trunc(d.getTimezoneOffset() * 60)
  }
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

/** How a conversion is printed: a number with its default digits, or text. */
type Conv =
  | { readonly num: (tm: Tm) => number, readonly digits: number, readonly spaces?: boolean }
  | { readonly text: (tm: Tm) => string, readonly names?: boolean, readonly ampm?: boolean, readonly lower?: boolean }

const CONVERSIONS: Readonly<Record<string, Conv>> = {
  a: { text: tm => (DAYS[tm.wday] as string).slice(0, 3), names: true },
  A: { text: tm => DAYS[tm.wday] as string, names: true },
  b: { text: tm => (MONTHS[tm.mon] as string).slice(0, 3), names: true },
  h: { text: tm => (MONTHS[tm.mon] as string).slice(0, 3), names: true },
  B: { text: tm => MONTHS[tm.mon] as string, names: true },
  c: { text: sub('%a %b %e %H:%M:%S %Y') },
  C: { num: tm => Math.floor(tm.year / 100), digits: 2 },
  d: { num: tm => tm.mday, digits: 2 },
  D: { text: sub('%m/%d/%y') },
  e: { num: tm => tm.mday, digits: 2, spaces: true },
  F: { text: sub('%Y-%m-%d') },
  g: { num: tm => ((isoWeek(tm).year % 100) + 100) % 100, digits: 2 },
  G: { num: tm => isoWeek(tm).year, digits: 1 },
  H: { num: tm => tm.hour, digits: 2 },
  I: { num: tm => (tm.hour + 11) % 12 + 1, digits: 2 },
  j: { num: tm => tm.yday + 1, digits: 3 },
  k: { num: tm => tm.hour, digits: 2, spaces: true },
  l: { num: tm => (tm.hour + 11) % 12 + 1, digits: 2, spaces: true },
  m: { num: tm => tm.mon + 1, digits: 2 },
  M: { num: tm => tm.min, digits: 2 },
  n: { text: () => '\n' },
  p: { text: tm => tm.hour < 12 ? 'AM' : 'PM', ampm: true },
  P: { text: tm => tm.hour < 12 ? 'am' : 'pm', lower: true },
  r: { text: sub('%I:%M:%S %p') },
  R: { text: sub('%H:%M') },
  s: { num: tm => tm.epoch, digits: 1 },
  S: { num: tm => tm.sec, digits: 2 },
  t: { text: () => '\t' },
  T: { text: sub('%H:%M:%S') },
  u: { num: tm => (tm.wday + 6) % 7 + 1, digits: 1 },
  U: { num: tm => Math.floor((tm.yday + 7 - tm.wday) / 7), digits: 2 },
  V: { num: tm => Math.floor(isoWeek(tm).days / 7) + 1, digits: 2 },
  w: { num: tm => tm.wday, digits: 1 },
  W: { num: tm => Math.floor((tm.yday + 7 - (tm.wday + 6) % 7) / 7), digits: 2 },
  x: { text: sub('%m/%d/%y') },
  X: { text: sub('%H:%M:%S') },
  y: { num: tm => ((tm.year % 100) + 100) % 100, digits: 2 },
  Y: { num: tm => tm.year, digits: 1 },
  z: { text: tm => tzOffset(tm.gmtoff) },
  Z: { text: tm => tzAbbreviation(tm), ampm: true },
  '%': { text: () => '%' }
}

/** A composite conversion (%c, %D, %T, ...): rendered as its expansion. */
function sub (format: string): (tm: Tm) => string {
  let parts: ReadonlyArray<string | TimePart> | null = null
  return tm => {
    parts ??= compileStrftime(format)
    let out = ''
    for (const part of parts) out += typeof part === 'string' ? part : part(tm)
    return out
  }
}

/**
 * glibc's strftime grammar: `%` [flags _-0^#+] [width] [E|O] conversion. Flags and width behave
 * as in glibc; E and O select nothing in the C locale. An unknown conversion is copied as written.
 */
function compileStrftime (format: string): Array<string | TimePart> {
  const parts: Array<string | TimePart> = []
  let literal = ''
  let i = 0
  const n = format.length
  while (i < n) {
    const c = format[i] as string
    if (c !== '%') {
      literal += c
      i++
      continue
    }
    const start = i++
    let pad = ''
    let upper = false
    let swapCase = false
    for (; i < n; i++) {
      const f = format[i] as string
      if (f === '_' || f === '-' || f === '0' || f === '+') pad = f
      else if (f === '^') upper = true
      else if (f === '#') swapCase = true
      else break
    }
    let width = 0
    while (i < n && format.charCodeAt(i) >= 48 && format.charCodeAt(i) <= 57) width = width * 10 + format.charCodeAt(i++) - 48
    if (i < n && (format[i] === 'E' || format[i] === 'O')) i++
    const conv = i < n ? CONVERSIONS[format[i] as string] : undefined
    if (conv === undefined) {
      // glibc copies an unknown or unfinished conversion as it stands.
      literal += format.slice(start, Math.min(i + 1, n))
      i++
      continue
    }
    i++
    if (literal !== '') parts.push(literal)
    literal = ''
    parts.push(convPart(conv, pad, width, upper, swapCase))
  }
  if (literal !== '') parts.push(literal)
  return parts
}

function convPart (conv: Conv, pad: string, width: number, upper: boolean, swapCase: boolean): TimePart {
  if ('num' in conv) {
    const fill = pad === '_' ? ' ' : pad === '0' || pad === '+' ? '0' : conv.spaces === true ? ' ' : '0'
    const digits = pad === '-' ? 1 : Math.max(width, conv.digits)
    const get = conv.num
    return tm => {
      const v = get(tm)
      return v < 0 ? '-' + String(-v).padStart(digits - 1, fill) : String(v).padStart(digits, fill)
    }
  }
  // glibc: %P is always lower case; '#' puts names in upper case and %p, %Z in lower case.
  const toLower = conv.lower === true || (swapCase && conv.ampm === true)
  const toUpper = !toLower && (upper || (swapCase && conv.names === true))
  const fill = pad === '0' || pad === '+' ? '0' : ' '
  const get = conv.text
  return tm => {
    let s = get(tm)
    if (toUpper) s = s.toUpperCase()
    else if (toLower) s = s.toLowerCase()
    return pad === '-' ? s : s.padStart(width, fill)
  }
}

/** glibc's ISO 8601 week: days since the Monday of week 1 of the ISO year `year`. */
function isoWeek (tm: Tm): { year: number, days: number } {
  const weekDays = (yday: number, wday: number): number => yday - (yday - wday + 4 + 378) % 7 + 3
  let year = tm.year
  let days = weekDays(tm.yday, tm.wday)
  if (days < 0) {
    year--
    days = weekDays(tm.yday + daysInYear(year), tm.wday)
  } else {
    const next = weekDays(tm.yday - daysInYear(year), tm.wday)
    if (next >= 0) {
      year++
      days = next
    }
  }
  return { year, days }
}

function daysInYear (year: number): number {
  return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 366 : 365
}

/** %z: +hhmm (seconds of historical offsets dropped, as glibc does). */
function tzOffset (gmtoff: number): string {
  const abs = Math.abs(gmtoff)
  const hhmm = Math.floor(abs / 3600) * 100 + Math.floor(abs / 60) % 60
  return (gmtoff < 0 ? '-' : '+') + String(hhmm).padStart(4, '0')
}

let zoneNames: Intl.DateTimeFormat[] = []
let zoneNamesTz: string | undefined = ''

/**
 * %Z: the zone's abbreviation (CET, EST, UTC). glibc reads it from tzdata; ICU knows the common
 * ones under en-US (American zones) or en-GB (European ones). Otherwise, as tzdata does for zones
 * without letters: +05, +0530.
 */
function tzAbbreviation (tm: Tm): string {
  // An Intl formatter keeps the zone it was made in; Date follows changes of process.env.TZ.
  if (zoneNames.length === 0 || zoneNamesTz !== process.env.TZ) {
    zoneNames = ['en-US', 'en-GB'].map(l => new Intl.DateTimeFormat(l, { timeZoneName: 'short' }))
    zoneNamesTz = process.env.TZ
  }
  for (const names of zoneNames) {
    const name = names.formatToParts(tm.epoch * 1000).find(p => p.type === 'timeZoneName')?.value
    if (name !== undefined && !/^GMT[+-]/.test(name)) return name
  }
  if (tm.gmtoff === 0) return 'UTC'
  const abs = Math.abs(tm.gmtoff)
  const mm = Math.floor(abs / 60) % 60
  return (tm.gmtoff < 0 ? '-' : '+') + String(Math.floor(abs / 3600)).padStart(2, '0') + (mm === 0 ? '' : String(mm).padStart(2, '0'))
}
