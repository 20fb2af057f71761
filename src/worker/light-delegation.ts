// What the light Request (light-request.ts) and the light Response (light-response.ts) share: both
// answer a few members themselves and hand everything else to the real undici object, built on
// first use; both keep the Headers handlers see in line with the real object's; both replace a
// thread global.

const INSPECT = Symbol.for('nodejs.util.inspect.custom')

/**
 * Puts on `light` (a light class's prototype) every member of `real` (the undici class's prototype)
 * it does not define itself, each delegated to the real object (`realOf(value, syncHeaders)`: the
 * getters without syncing the headers, the methods after), plus util.inspect; then chains `light`
 * to `real` (instanceof, and whatever a later Node adds) with `real`'s own `constructor`.
 */
export function delegateToReal (light: object, real: object, realOf: (value: object, syncHeaders: boolean) => object): void {
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
  Object.defineProperty(light, INSPECT, {
    value: function (this: object, _depth: number, options: object, inspect: (value: unknown, options: object) => string) {
      return inspect(realOf(this, true), options)
    },
    configurable: true
  })
  Reflect.deleteProperty(light, 'constructor')
  Object.setPrototypeOf(light, real)
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

/** Replaces a global with the same attributes (Node defines these as plain data properties). */
export function replaceGlobal (name: string, value: unknown): void {
  const enumerable = Object.getOwnPropertyDescriptor(globalThis, name)?.enumerable ?? false
  Object.defineProperty(globalThis, name, { value, writable: true, enumerable, configurable: true })
}
