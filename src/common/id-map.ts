// A map from request ids to what runs them, for maps that hold one entry most of the time and are
// emptied and filled again per request: a connection's exchanges, a thread's running requests.
//
// Why not a Map: V8 rebuilds a Map's hash table when a delete empties it (or leaves it under a
// quarter full) and when deleted entries fill it, and allocates the new table in the generation of
// the old one. A long-lived Map's table is in the old generation, so a Map filled and emptied per
// request made old-generation garbage per request: a full mark-compact every 250 ms at 75k req/s on
// one thread (--trace-gc), and most of the bytes that V8's sampling heap profiler saw collected by
// those came from Map.prototype.delete. Here the one entry is two fields; a Map takes the others
// only while several ids are there at once (multiplexed requests, pm.thread_concurrency > 1).

export class IdMap<V> {
  #hasOne = false
  #oneId = 0
  #one: V | undefined = undefined
  #more: Map<number, V> | null = null

  get size (): number {
    return (this.#hasOne ? 1 : 0) + (this.#more === null ? 0 : this.#more.size)
  }

  get (id: number): V | undefined {
    if (this.#hasOne && this.#oneId === id) return this.#one
    return this.#more === null ? undefined : this.#more.get(id)
  }

  set (id: number, value: V): void {
    if (this.#hasOne ? this.#oneId === id : this.#more === null || !this.#more.has(id)) {
      this.#hasOne = true
      this.#oneId = id
      this.#one = value
      return
    }
    (this.#more ??= new Map()).set(id, value)
  }

  delete (id: number): boolean {
    if (this.#hasOne && this.#oneId === id) {
      this.#hasOne = false
      this.#one = undefined
      return true
    }
    return this.#more !== null && this.#more.delete(id)
  }

  clear (): void {
    this.#hasOne = false
    this.#one = undefined
    this.#more?.clear()
  }

  /** The values present now, in an array of their own. */
  values (): V[] {
    const values = this.#more === null ? [] : [...this.#more.values()]
    if (this.#hasOne) values.unshift(this.#one as V)
    return values
  }

  /**
   * Calls `fn` with each value present when it is called: changes made by `fn` (deleting or adding
   * entries) do not change which values it gets. Pass a function made once, not a new closure per call.
   */
  forEach (fn: (value: V) => void): void {
    const more = this.#more
    if (more === null || more.size === 0) {
      if (this.#hasOne) fn(this.#one as V)
      return
    }
    const values = [...more.values()]
    if (this.#hasOne) fn(this.#one as V)
    for (const value of values) fn(value)
  }
}
