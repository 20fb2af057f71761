// The handler's `env`: the pool's env, then every FastCGI param (params win, like php's $_SERVER).
//
// Built ~20 properties at a time from fresh strings, the object was the largest item of a worker's
// time for a small request (1.5 us of ~12): every name is hashed into a property key and the object
// goes through a map transition (or a dictionary insert) per property. A web server sends the same
// names in the same order request after request, so for a list of names seen before (a shape,
// common/params-shape.ts, which keeps it) the thread compiles a function that returns an object
// literal with those keys: V8 then copies a boilerplate and stores the values (~0.05 us). Names are
// embedded with JSON.stringify (a string literal whatever they hold) and `__proto__` as a computed
// key (an own property, as before). Where code cannot be generated
// (--disallow-code-generation-from-strings), or for a shape seen once, the object is built property
// by property as before.

import { shapeOf, type EnvFactory, type ParamsShape } from '../common/params-shape.ts'

/** A shape is compiled the second time it is seen: once is often a one-off (an unusual header). */
const COMPILE_AT = 2
let canCompile = true

/** `shape`: the params' (common/params-shape.ts), which keeps the factory for its names. */
export function buildEnv (params: readonly string[], poolEnv: Readonly<Record<string, string>>, shape: ParamsShape = shapeOf(params)): Record<string, string> {
  let slot = shape.env
  if (slot === null || slot.poolEnv !== poolEnv) {
    slot = { poolEnv, seen: 0, make: null }
    shape.env = slot
  }
  if (slot.make === null && ++slot.seen >= COMPILE_AT && canCompile) slot.make = compile(shape.names, poolEnv)
  return slot.make === null ? buildSlowly(params, poolEnv) : slot.make(params, poolEnv)
}

function buildSlowly (params: readonly string[], poolEnv: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = { ...poolEnv }
  const last = params.length - 1
  for (let i = 0; i < last; i += 2) {
    const name = params[i] as string
    if (name === '__proto__') Object.defineProperty(env, name, { value: params[i + 1], enumerable: true, writable: true, configurable: true })
    else env[name] = params[i + 1] as string
  }
  return env
}

/** `(p, q) => ({ "POOL": q["POOL"], ..., "NAME": p[1], ... })`, or null where code generation is refused. */
function compile (names: readonly string[], poolEnv: Readonly<Record<string, string>>): EnvFactory | null {
  const members: string[] = []
  for (const key of Object.keys(poolEnv)) members.push(`${literalKey(key)}: q[${JSON.stringify(key)}]`)
  for (let i = 0; i < names.length; i++) members.push(`${literalKey(names[i] as string)}: p[${2 * i + 1}]`)
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
    return new Function('p', 'q', `'use strict'; return { ${members.join(', ')} }`) as EnvFactory
  } catch {
    canCompile = false
    return null
  }
}

/** A key of an object literal that defines an own property named `name`. */
function literalKey (name: string): string {
  // "__proto__": v in a literal sets the prototype; ["__proto__"]: v defines the property.
  return name === '__proto__' ? '["__proto__"]' : JSON.stringify(name)
}
