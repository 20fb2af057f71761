// One slowlog entry, in php-fpm's format (php-fpm.md §7.3), so that tools that read php's slowlog
// read node-fpm's:
//
//   (empty line)
//   [03-Jun-2021 07:21:46]  [pool www] pid 12
//   script_filename = /srv/app/index.mjs
//   [0x9a3c0d51e26f4b80] busyLoop() /srv/app/lib.mjs:12
//   [0x4be1c3d0a7ff2d19] render() /srv/app/index.mjs:5
//
// - `pid` is the thread id (a thread is what a php child is here).
// - One line per JavaScript frame, innermost first, at most request_slowlog_trace_depth. The name is
//   the function's (`<anonymous>` when it has none); file:line is where that frame is executing
//   (JavaScript's convention, as in Error.stack; php prints where each function was called from).
//   file:// URLs are printed as paths, node's own modules as `node:...`, a script without URL as
//   `unknown` (php's word).
// - The address column keeps php's shape, `0x` and 16 hex digits, but a thread has no frame address
//   to show: it is a 64-bit FNV-1a hash of the function's identity (its script and where it is
//   defined), the same for the same function in every entry, thread and run of the same code: lines
//   can be grouped by it.
// - The walk stops where node-fpm's own code calls the handler (php stops at the top-level script
//   frame): what is below is the same for every request.
// - The thread runs no JavaScript of the request (it awaits I/O or a timer): one `+++` line says so,
//   with what keeps the thread's event loop alive, instead of an empty trace. A capture that failed
//   (no answer: a thread blocked in a system call; it exited): php's `+++ dump failed`.

import { fileURLToPath } from 'node:url'
import type { StackFrame } from './worker-backtrace.ts'

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

export const DUMP_FAILED = '+++ dump failed'

/** What the entry says below script_filename. */
export type SlowlogTrace =
  | { readonly kind: 'frames', readonly frames: readonly StackFrame[] }
  /** No JavaScript of the request on the stack; `resources`: process.getActiveResourcesInfo() of the thread (null: unknown). */
  | { readonly kind: 'awaiting', readonly resources: readonly string[] | null }
  | { readonly kind: 'failed' }

export interface SlowlogEntry {
  /** Epoch ms of the trace. */
  readonly atMs: number
  readonly poolName: string
  readonly threadId: number
  readonly script: string
  readonly trace: SlowlogTrace
  /** log_level = debug: microseconds in the time, as php's zlog does. */
  readonly micro: boolean
}

/** The entry's text, from its leading empty line to its last newline. */
export function formatSlowlogEntry (e: SlowlogEntry): string {
  const lines = ['', `${slowlogTime(e.atMs, e.micro)} [pool ${e.poolName}] pid ${e.threadId}`, `script_filename = ${e.script}`]
  const trace = e.trace
  if (trace.kind === 'failed') lines.push(DUMP_FAILED)
  else if (trace.kind === 'awaiting') lines.push(awaitingLine(trace.resources))
  else for (const f of trace.frames) lines.push(frameLine(f))
  return lines.join('\n') + '\n'
}

/** php's zlog time with its trailing space: `[03-Jun-2021 07:21:46] ` (local time), `.123456` before `]` when `micro`. */
export function slowlogTime (epochMs: number, micro: boolean): string {
  const d = new Date(epochMs)
  const p2 = (n: number): string => String(n).padStart(2, '0')
  let s = `[${p2(d.getDate())}-${MONTHS[d.getMonth()] ?? ''}-${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
  if (micro) s += '.' + String(Math.floor((epochMs % 1000) * 1000)).padStart(6, '0')
  return s + '] '
}

/** `[0x<16 hex>] name() file:line`. */
export function frameLine (f: StackFrame): string {
  return `[0x${frameAddress(f)}] ${f.functionName === '' ? '<anonymous>' : f.functionName}() ${displayFile(f.url)}:${f.line}`
}

/** The function's identity as 16 hex digits (64-bit FNV-1a): stable across entries, threads and runs. */
export function frameAddress (f: StackFrame): string {
  const key = `${f.url}\n${f.functionName}\n${f.functionLine}:${f.functionColumn}`
  let h = 0xcbf29ce484222325n
  for (let i = 0; i < key.length; i++) {
    h ^= BigInt(key.charCodeAt(i))
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return h.toString(16).padStart(16, '0')
}

function displayFile (url: string): string {
  if (url === '') return 'unknown'
  if (url.startsWith('file:')) {
    try {
      return fileURLToPath(url)
    } catch {
      return url
    }
  }
  return url
}

function awaitingLine (resources: readonly string[] | null): string {
  const what = resources === null ? '' : ` (active resources of the thread: ${countResources(resources)})`
  return `+++ no JavaScript of the request on the stack: it awaits I/O or a timer${what}`
}

/** `Timeout, MessagePort (2)`: each kind once, in first-seen order, with its count when more than one. */
function countResources (resources: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const r of resources) counts.set(r, (counts.get(r) ?? 0) + 1)
  if (counts.size === 0) return 'none'
  return [...counts].map(([name, n]) => n === 1 ? name : `${name} (${n})`).join(', ')
}

/**
 * The frames of the request's own code, innermost first, at most `depth`: from the top of the
 * stack to the last frame before node-fpm's code that called it (`isOwn`: node-fpm's worker code,
 * piscina). null when no frame is the request's code (only node's internals and node-fpm's own):
 * the thread was not running the request's JavaScript when it was asked.
 */
export function requestFrames (frames: readonly StackFrame[], depth: number, isOwn: (url: string) => boolean): StackFrame[] | null {
  const out: StackFrame[] = []
  let sawUserCode = false
  for (const f of frames) {
    const own = isOwn(f.url)
    if (own && sawUserCode) break
    if (!own && !f.url.startsWith('node:')) sawUserCode = true
    if (out.length < depth) out.push(f)
  }
  return sawUserCode ? out : null
}
