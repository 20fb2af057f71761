// undici's Request, Response and fetch (Node's own Fetch API), loaded when a thread first needs
// them. Loading undici costs a thread about 6 MiB and 12 ms of start-up (bench:startup), while a
// handler that answers `new Response(text)` or `Response.json(value)` never needs it (the light
// objects of light-request.ts and light-response.ts).
//
// Node's globals Request and Response are the only public way to undici's classes, and they load
// undici when read; the thread replaces them at start. So where the thread runs with
// --expose-internals (the pool adds it when the process has no other node flags:
// LAZY_UNDICI_EXEC_ARGV) the classes come from Node's own module, `internal/deps/undici/undici`
// (the module those globals come from), on first use. Anywhere else (node flags, the tests' main
// thread) they are taken from the globals at install, as undici loads then anyway.

import { createRequire } from 'node:module'

export interface UndiciClasses {
  readonly Request: typeof Request
  readonly Response: typeof Response
  readonly fetch: typeof fetch
}

/** The worker execArgv that lets a thread load undici lazily (see the top of this file). */
export const LAZY_UNDICI_EXEC_ARGV: readonly string[] = ['--expose-internals']

const UNDICI_MODULE = 'internal/deps/undici/undici'

let classes: UndiciClasses | null = null
let source: (() => UndiciClasses) | null = null
const onLoad: Array<(loaded: UndiciClasses) => void> = []

/**
 * Says where the classes will come from; call it before the globals are replaced. Without
 * --expose-internals (or Node's module) the globals are read now (undici loads).
 */
export function prepareUndici (): void {
  if (source !== null) return
  const require = createRequire(import.meta.url)
  if (process.execArgv.includes(LAZY_UNDICI_EXEC_ARGV[0] as string) && resolves(require, UNDICI_MODULE)) {
    source = () => require(UNDICI_MODULE) as UndiciClasses
  } else {
    const eager: UndiciClasses = { Request: globalThis.Request, Response: globalThis.Response, fetch: globalThis.fetch }
    source = () => eager
    load(source)
  }
}

/** Whether `id` can be required (nothing loads): a later Node may move undici's module. */
function resolves (require: NodeJS.Require, id: string): boolean {
  try {
    require.resolve(id)
    return true
  } catch {
    return false
  }
}

/** undici's classes, loaded (and the onUndiciLoad callbacks run) on the first call. */
export function undici (): UndiciClasses {
  // Not prepared: the globals were not replaced (light objects used outside a worker thread).
  if (source === null) prepareUndici()
  return classes ?? load(source as () => UndiciClasses)
}

function load (from: () => UndiciClasses): UndiciClasses {
  const loaded = from()
  const out = { Request: loaded.Request, Response: loaded.Response, fetch: loaded.fetch }
  classes = out
  for (const callback of onLoad.splice(0)) callback(out)
  return out
}

/** undici's classes when they are loaded already, else null (nothing loads). */
export function undiciIfLoaded (): UndiciClasses | null {
  return classes
}

/** Runs `callback` when the classes load (at once when they are loaded). */
export function onUndiciLoad (callback: (loaded: UndiciClasses) => void): void {
  if (classes !== null) callback(classes)
  else onLoad.push(callback)
}
