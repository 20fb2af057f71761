// The handler's `env`: the pool's env, then every FastCGI param (params win, like php's $_SERVER).
//
// Built ~20 properties at a time from fresh strings, the object was the largest item of a worker's
// time for a small request (1.5 us of ~12): every name is hashed into a property key and the object
// goes through a map transition (or a dictionary insert) per property. A web server sends the same
// names in the same order request after request, so for a list of names seen before (a "shape") the
// thread compiles a function that returns an object literal with those keys: V8 then copies a
// boilerplate and stores the values (~0.05 us). Names are embedded with JSON.stringify (a string
// literal whatever they hold) and `__proto__` as a computed key (an own property, as before). Where
// code cannot be generated (--disallow-code-generation-from-strings), or for a shape seen once, the
// object is built property by property as before.

type EnvFactory = (params: readonly string[], poolEnv: Readonly<Record<string, string>>) => Record<string, string>

interface Shape {
  /** The param names, in order (values at odd indexes are not part of the shape). */
  readonly names: readonly string[]
  readonly poolEnv: Readonly<Record<string, string>>
  seen: number
  make: EnvFactory | null
}

/** Shapes kept, most recently used first. */
const SHAPES_MAX = 16
/** A shape is compiled the second time it is seen: once is often a one-off (an unusual header). */
const COMPILE_AT = 2
const shapes: Shape[] = []
let canCompile = true

export function buildEnv (params: readonly string[], poolEnv: Readonly<Record<string, string>>): Record<string, string> {
  const make = factoryFor(params, poolEnv)
  return make === null ? buildSlowly(params, poolEnv) : make(params, poolEnv)
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

function factoryFor (params: readonly string[], poolEnv: Readonly<Record<string, string>>): EnvFactory | null {
  const pairs = params.length >> 1
  for (let s = 0; s < shapes.length; s++) {
    const shape = shapes[s] as Shape
    if (shape.poolEnv !== poolEnv || shape.names.length !== pairs || !sameNames(shape.names, params)) continue
    if (s > 0) {
      shapes.splice(s, 1)
      shapes.unshift(shape)
    }
    if (shape.make === null && ++shape.seen >= COMPILE_AT && canCompile) shape.make = compile(shape.names, poolEnv)
    return shape.make
  }
  if (shapes.length >= SHAPES_MAX) shapes.pop()
  const names: string[] = []
  for (let i = 0; i < pairs; i++) names.push(params[2 * i] as string)
  shapes.unshift({ names, poolEnv, seen: 1, make: null })
  return null
}

function sameNames (names: readonly string[], params: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== params[2 * i]) return false
  }
  return true
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
