// What the light Request (light-request.ts) and the light Response (light-response.ts) share: both
// answer a few members themselves and hand everything else to the real undici object, built on
// first use; both keep the Headers handlers see in line with the real object's; both replace a
// thread global with a class that needs undici only once something asks for it (undici-classes.ts).

const INSPECT = Symbol.for('nodejs.util.inspect.custom')

type RealOf = (value: object, syncHeaders: boolean) => object
/** A class, or the function that stands for one. */
type AnyClass = Function

/**
 * What a light class's prototype shows before undici loads: its tag (Object.prototype.toString
 * gives `[object Response]`) and util.inspect (the real object's view, which loads undici).
 */
export function lightPrototype (light: object, tag: string, realOf: RealOf): void {
  Object.defineProperty(light, Symbol.toStringTag, { value: tag, configurable: true })
  Object.defineProperty(light, INSPECT, {
    value: function (this: object, _depth: number, options: object, inspect: (value: unknown, options: object) => string) {
      return inspect(realOf(this, true), options)
    },
    configurable: true
  })
}

/**
 * Once undici is loaded: puts on `light` (a light class's prototype) every member of `real` (the
 * undici class's prototype) it does not define itself, each delegated to the real object
 * (`realOf(value, syncHeaders)`: the getters without syncing the headers, the methods after); then
 * chains `light` to `real` (instanceof, and whatever a later Node adds) with `real`'s own `constructor`.
 */
export function delegateToReal (light: object, real: object, realOf: RealOf): void {
  for (const name of Object.getOwnPropertyNames(real)) {
    if (name === 'constructor' || Object.hasOwn(light, name)) continue
    const descriptor = Object.getOwnPropertyDescriptor(real, name)
    if (descriptor?.get !== undefined) {
      Object.defineProperty(light, name, {
        get (this: object) { return (realOf(this, false) as Record<string, unknown>)[name] },
        enumerable: descriptor.enumerable,
        configurable: true
      })
    } else if (typeof descriptor?.value === 'function') {
      Object.defineProperty(light, name, {
        value: function (this: object, ...args: unknown[]) {
          const target = realOf(this, true) as Record<string, (...a: unknown[]) => unknown>
          return target[name]?.(...args)
        },
        writable: true,
        enumerable: descriptor.enumerable,
        configurable: true
      })
    }
  }
  Reflect.deleteProperty(light, 'constructor')
  Object.setPrototypeOf(light, real)
}

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance]

/**
 * The thread's global `name` in place of undici's class, usable before undici loads. Constructing
 * it runs `impl` (its new.target is `impl` itself for `new Global()`, the subclass's otherwise: use
 * realTarget()). Its `prototype` is undici's class's, read (so loading undici: `real()`) only
 * when something asks for it (`class X extends Response`), then a plain value (linkClass).
 * `instanceof` holds for light objects without loading undici, for undici's objects once loaded.
 */
export function replacementClass (name: string, impl: AnyClass, length: number, isLight: (value: unknown) => boolean,
  real: () => AnyClass, loaded: () => AnyClass | null): AnyClass {
  const replacement = impl.bind(null)
  Object.defineProperty(replacement, 'name', { value: name })
  Object.defineProperty(replacement, 'length', { value: length })
  Object.defineProperty(replacement, 'prototype', { get () { return real().prototype }, enumerable: false, configurable: true })
  Object.defineProperty(replacement, Symbol.hasInstance, {
    value: function (this: unknown, value: unknown): boolean {
      // A subclass: the usual prototype walk.
      if (this !== replacement) return ordinaryHasInstance.call(this, value)
      if (isLight(value)) return true
      const realClass = loaded()
      return realClass !== null && ordinaryHasInstance.call(realClass, value)
    },
    configurable: true
  })
  return replacement
}

/** Once undici is loaded: `replacement.prototype` is undici's, whose `constructor` is `replacement`. */
export function linkClass (replacement: AnyClass, real: AnyClass): void {
  Object.defineProperty(replacement, 'prototype', { value: real.prototype, writable: false, enumerable: false, configurable: false })
  Object.defineProperty(real.prototype, 'constructor', { value: replacement, writable: true, enumerable: false, configurable: true })
}

/** The new.target for undici's constructor: its class for `new Global()`, else the subclass. */
export function realTarget (newTarget: AnyClass, impl: AnyClass, real: AnyClass): AnyClass {
  return newTarget === impl ? real : newTarget
}

/** `real` with the headers handlers see (they may have changed them, or got them before `real` existed). */
export function withHeaders<T extends { readonly headers: Headers }> (real: T, headers: Headers | null): T {
  if (headers !== null && headers !== real.headers) copyHeaders(headers, real.headers)
  return real
}

/** Makes `target` hold exactly what `source` holds. */
export function copyHeaders (source: Headers, target: Headers): void {
  for (const name of [...target.keys()]) target.delete(name)
  for (const [name, value] of source) target.append(name, value)
}

/**
 * Replaces a global with Node's attributes for it (writable, configurable; `enumerable` as Node
 * has it). Request and Response are lazy properties that load undici when read or redefined, not
 * when deleted: so the old one is deleted first, and its attributes are not read.
 */
export function replaceGlobal (name: string, value: unknown, enumerable: boolean): void {
  Reflect.deleteProperty(globalThis, name)
  Object.defineProperty(globalThis, name, { value, writable: true, enumerable, configurable: true })
}
