// A map from request ids to what serves them, for maps that are filled and emptied per request: a
// connection's exchanges, the pool's jobs, a thread's running requests.
//
// Why not a Map: V8 rebuilds a Map's hash table when a delete empties it (or leaves it under a
// quarter full) and when deleted entries fill it, and allocates the new table in the generation of
// the old one. A long-lived Map's table is in the old generation, so a Map filled and emptied per
// request made old-generation garbage per request, and each table left behind still points at the
// entries it held, which young collections then keep alive (and promote) until the next full one:
// a full mark-compact every 250 ms at 75k req/s on one thread (--trace-gc), and most of the bytes
// that V8's sampling heap profiler saw collected by those came from Map.prototype.delete. The same
// holds for a Set (pool-thread.ts jobs) and a Map by socket (server/listener.ts).
//
// Here an id has one slot, `id mod capacity`, in two arrays made once: sequential ids in flight
// together never meet, and neither do a connection's few FastCGI request ids. An id whose slot is
// taken (an old request still there when one `capacity` ids later arrives) goes to a Map, which is
// the only part that can churn.

// A slot holds its id + 1, so that 0 is empty: the arrays need no fill when a map is made (a
// connection makes one: Array.prototype.fill is a C++ builtin, ~300 instructions of a connection's).
const EMPTY = 0

export class IdMap<V> {
  readonly #mask: number
  /** The id + 1 in each slot, or EMPTY; Float64: pool ids pass 2^31 after a few hours at 100k req/s. */
  readonly #ids: Float64Array
  readonly #values: Array<V | undefined>
  #inSlots = 0
  #more: Map<number, V> | null = null

  /** `capacity`: slots, rounded up to a power of two; ids are integers >= 0. */
  constructor (capacity: number) {
    let size = 1
    while (size < capacity) size *= 2
    this.#mask = size - 1
    this.#ids = new Float64Array(size)
    this.#values = new Array<V | undefined>(size)
  }

  get size (): number {
    return this.#inSlots + (this.#more === null ? 0 : this.#more.size)
  }

  get (id: number): V | undefined {
    const slot = id & this.#mask
    if (this.#ids[slot] === id + 1) return this.#values[slot]
    return this.#more === null ? undefined : this.#more.get(id)
  }

  set (id: number, value: V): void {
    const slot = id & this.#mask
    const inSlot = this.#ids[slot]
    if (inSlot === id + 1) {
      this.#values[slot] = value
    } else if (inSlot === EMPTY && (this.#more === null || !this.#more.has(id))) {
      this.#ids[slot] = id + 1
      this.#values[slot] = value
      this.#inSlots++
    } else {
      (this.#more ??= new Map()).set(id, value)
    }
  }

  delete (id: number): boolean {
    const slot = id & this.#mask
    if (this.#ids[slot] === id + 1) {
      this.#ids[slot] = EMPTY
      this.#values[slot] = undefined
      this.#inSlots--
      return true
    }
    return this.#more !== null && this.#more.delete(id)
  }

  clear (): void {
    if (this.#inSlots > 0) {
      this.#ids.fill(EMPTY)
      this.#values.fill(undefined)
      this.#inSlots = 0
    }
    this.#more?.clear()
  }

  /** The values present now, in an array of their own. */
  values (): V[] {
    const values: V[] = []
    if (this.#inSlots > 0) {
      for (let slot = 0; slot <= this.#mask; slot++) {
        if (this.#ids[slot] !== EMPTY) values.push(this.#values[slot] as V)
      }
    }
    if (this.#more !== null) for (const value of this.#more.values()) values.push(value)
    return values
  }

  /**
   * Calls `fn` with each value present when it is called: changes made by `fn` (deleting or adding
   * entries) do not change which values it gets. Pass a function made once, not a new closure per
   * call. Without allocation when one value is present (the common case: a connection's request).
   */
  forEach (fn: (value: V) => void): void {
    const size = this.size
    if (size === 0) return
    if (size === 1 && this.#inSlots === 1) {
      for (let slot = 0; slot <= this.#mask; slot++) {
        if (this.#ids[slot] !== EMPTY) {
          fn(this.#values[slot] as V)
          return
        }
      }
    }
    for (const value of this.values()) fn(value)
  }
}
