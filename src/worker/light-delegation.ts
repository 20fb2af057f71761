// What the light Request (light-request.ts) and the light Response (light-response.ts) share: both
// answer a few members themselves and hand everything else to the real undici object, built on
// first use; both keep the Headers handlers see in line with the real object's; both replace a
// thread global with a class that needs undici only once something asks for it (undici-classes.ts).

import { onUndiciLoad, prepareUndici, undici, undiciIfLoaded } from './undici-classes.ts'
import type { UndiciClasses } from './undici-classes.ts'

const INSPECT = Symbol.for('nodejs.util.inspect.custom')

type RealOf = (value: object, syncHeaders: boolean) => object
/** A class, or the function that stands for one. */
type AnyClass = Function

/** The body readers Request and Response share; blob() and formData() read the content-type header. */
const BODY_READERS: ReadonlyArray<readonly [name: string, syncHeaders: boolean]> = [
  ['arrayBuffer', false], ['bytes', false], ['text', false], ['json', false], ['blob', true], ['formData', true]
]

/**
 * What a light class's prototype has before undici loads, besides what the class answers itself:
 * the body readers (each reads the real object: `realOf(value, syncHeaders)`), its tag
 * (Object.prototype.toString gives `[object Response]`) and util.inspect (the real object's view).
 */
export function lightPrototype (light: object, tag: string, realOf: RealOf): void {
  for (const [name, syncHeaders] of BODY_READERS) {
    const reader = {
      [name] (this: object): unknown {
        return (realOf(this, syncHeaders) as Record<string, () => unknown>)[name]?.()
      }
    }[name]
    Object.defineProperty(light, name, { value: reader, writable: true, enumerable: false, configurable: true })
  }
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
function delegateToReal (light: object, real: object, realOf: RealOf): void {
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

/** A light class and the global that stands for undici's class in the threads. */
export interface LightClass {
  readonly name: 'Request' | 'Response'
  /** What the global constructs: its new.target is `impl` itself for `new Global()`, the subclass's otherwise (realTarget). */
  readonly impl: AnyClass
  /** undici's constructor's length. */
  readonly length: number
  /** The light class's prototype. */
  readonly light: object
  readonly isLight: (value: unknown) => boolean
  readonly realOf: RealOf
  /** Statics of the global until undici loads (then `onLoad` may replace them). */
  readonly statics?: Readonly<Record<string, AnyClass>>
}

/**
 * Installs the thread's global `spec.name` in place of undici's class, usable before undici loads. Its `prototype` is undici's class's, read (so loading undici) only when something
 * asks for it (`class X extends Response`), then a plain value whose `constructor` is the global.
 * `instanceof` holds for light objects without loading undici, for undici's objects once loaded.
 * When undici loads, the light prototype delegates the rest to it (delegateToReal) and `onLoad` runs.
 */
export function installLightClass (spec: LightClass, onLoad?: (replacement: AnyClass, real: AnyClass) => void): void {
  prepareUndici()
  const pick = (classes: UndiciClasses): AnyClass => classes[spec.name]
  const replacement = spec.impl.bind(null)
  Object.defineProperty(replacement, 'name', { value: spec.name })
  Object.defineProperty(replacement, 'length', { value: spec.length })
  Object.defineProperty(replacement, 'prototype', { get () { return pick(undici()).prototype }, enumerable: false, configurable: true })
  Object.defineProperty(replacement, Symbol.hasInstance, {
    value: function (this: unknown, value: unknown): boolean {
      // A subclass: the usual prototype walk.
      if (this !== replacement) return ordinaryHasInstance.call(this, value)
      if (spec.isLight(value)) return true
      const loaded = undiciIfLoaded()
      return loaded !== null && ordinaryHasInstance.call(pick(loaded), value)
    },
    configurable: true
  })
  for (const [name, value] of Object.entries(spec.statics ?? {})) {
    Object.defineProperty(replacement, name, { value, writable: true, enumerable: false, configurable: true })
  }
  onUndiciLoad((classes) => {
    const real = pick(classes)
    Object.defineProperty(replacement, 'prototype', { value: real.prototype, writable: false, enumerable: false, configurable: false })
    Object.defineProperty(real.prototype, 'constructor', { value: replacement, writable: true, enumerable: false, configurable: true })
    delegateToReal(spec.light, real.prototype, spec.realOf)
    onLoad?.(replacement, real)
  })
  replaceGlobal(spec.name, replacement, false)
}

/** The new.target for undici's constructor: its class for `new Global()`, else the subclass. */
export function realTarget (newTarget: AnyClass, impl: AnyClass, real: AnyClass): AnyClass {
  return newTarget === impl ? real : newTarget
}

/**
 * A real object built after its light one's body went elsewhere (the sender took it, a light reader
 * read it): built with no bytes, it is made to look read as well (bodyUsed true, body locked).
 */
export function markRead (real: { readonly body: ReadableStream<Uint8Array> | null }): void {
  real.body?.getReader().read().catch(noop)
}

function noop (): void {}

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

/** A token (RFC 9110 §5.6.2): what a method and a header name must be ('' passes: callers check). */
export function isToken (value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    // tchar (RFC 9110 §5.6.2): ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) continue
    if (c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e ||
      c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e) continue
    return false
  }
  return true
}

/** A pair Headers refuses (NUL/CR/LF in the value, a name that is not a token) is skipped. */
export function appendPairs (headers: Headers, pairs: readonly string[]): Headers {
  const last = pairs.length - 1
  for (let i = 0; i < last; i += 2) {
    try {
      headers.append(pairs[i] as string, pairs[i + 1] as string)
    } catch {}
  }
  return headers
}
