// Loads the user handler of a script, once per thread. The script is an ES module (or anything
// `import()` takes: .js .mjs .cjs, and .ts .mts through Node's type stripping) whose default export
// is either a function `(request, env, ctx) => Response` or an object with such a `fetch` method
// (Hono's `app`, module-worker style). A CommonJS module's default export is `module.exports`.
// Code reload is not done here: the ESM cache cannot be evicted (node-runtime.md §7), so a reload
// replaces the threads.

import { pathToFileURL } from 'node:url'
import { FpmError } from '../common/errors.ts'
import type { HandlerContext } from './handler-context.ts'

export type FetchHandler = (request: Request, env: Record<string, string>, ctx: HandlerContext) => unknown

const handlers = new Map<string, FetchHandler>()
const loading = new Map<string, Promise<FetchHandler>>()

/** The handler when this thread has already loaded `script` (no await on the hot path). */
export function cachedHandler (script: string): FetchHandler | undefined {
  return handlers.get(script)
}

/** Imports `script` (once per thread; concurrent calls share the import; failures are not cached). */
export function loadHandler (script: string): Promise<FetchHandler> {
  const handler = handlers.get(script)
  if (handler !== undefined) return Promise.resolve(handler)
  let pending = loading.get(script)
  if (pending === undefined) {
    pending = importHandler(script)
    loading.set(script, pending)
    pending.then((loaded) => {
      handlers.set(script, loaded)
      loading.delete(script)
    }, () => {
      loading.delete(script)
    })
  }
  return pending
}

async function importHandler (script: string): Promise<FetchHandler> {
  const namespace = await import(pathToFileURL(script).href) as Record<string, unknown>
  return handlerFromModule(script, namespace)
}

/** The handler a module namespace provides, or FPM_ERR_HANDLER_INVALID saying what was found. */
export function handlerFromModule (script: string, namespace: Record<string, unknown>): FetchHandler {
  const exported = namespace.default
  if (typeof exported === 'function') return exported as FetchHandler
  if (typeof exported === 'object' && exported !== null) {
    const fetch = (exported as { fetch?: unknown }).fetch
    if (typeof fetch === 'function') return fetch.bind(exported) as FetchHandler
  }
  let found: string
  if (!('default' in namespace)) {
    const names = Object.keys(namespace)
    found = names.length === 0 ? 'no exports at all' : `no default export (exports: ${names.slice(0, 5).join(', ')})`
  } else if (typeof exported === 'object' && exported !== null) {
    found = describeValue(exported) + ('fetch' in exported ? ' whose fetch is not a function' : ' without a fetch() method')
  } else {
    found = describeValue(exported)
  }
  return invalid(script, found)
}

function invalid (script: string, found: string): never {
  throw new FpmError('FPM_ERR_HANDLER_INVALID',
    `${script}: the default export must be a function or an object with a fetch() method; found ${found}`)
}

/** A short description of a value for error messages ("an object", "a Promise", "the number 42"). */
export function describeValue (value: unknown): string {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  switch (typeof value) {
    case 'object': {
      let name: unknown
      try {
        name = (value as { constructor?: { name?: unknown } }).constructor?.name
      } catch {}
      return typeof name === 'string' && name !== 'Object' && name !== '' ? `a ${name}` : 'an object'
    }
    case 'string': return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`
    case 'function': return 'a function'
    default: return `the ${typeof value} ${String(value)}`
  }
}
