// The pool's queue of requests waiting for a thread (php-fpm leaves them in the kernel's listen
// backlog, unbounded in time: php-fpm.md §14 item 12). First in, first out; bounded in length by
// request.queue_max (the pool refuses beyond it) and in time by request.queue_timeout: entries keep
// the time they were first queued, so the head is always the one that expires first, and one timer
// for the head serves the whole queue. An entry can also leave from the middle (its client went
// away): it is found (O(n), rare) and marked, and skipped when it reaches the head; the other
// operations are O(1) amortized.
// Knows nothing of threads or piscina: pool.ts decides when the head leaves.

export interface QueueEntry {
  /** performance.now() when the request was first queued (kept when it is queued again). */
  readonly queuedAtMs: number
}

export class RequestQueue<T extends QueueEntry> {
  #items: Array<T | undefined> = []
  #head = 0
  #size = 0
  /** Entries removed from the middle, still in #items. */
  readonly #removed = new Set<T>()

  get size (): number { return this.#size }

  push (entry: T): void {
    this.#items.push(entry)
    this.#size++
  }

  /** Back at the head (a request that was handed to a thread which died before running it). */
  unshift (entry: T): void {
    if (this.#head > 0) this.#items[--this.#head] = entry
    else this.#items.unshift(entry)
    this.#size++
  }

  peek (): T | undefined {
    this.#skipRemoved()
    return this.#size === 0 ? undefined : this.#items[this.#head]
  }

  shift (): T | undefined {
    this.#skipRemoved()
    if (this.#size === 0) return undefined
    const entry = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    this.#size--
    this.#compact()
    return entry
  }

  /** Takes `entry` out wherever it is; false when it is not queued. */
  remove (entry: T): boolean {
    if (this.#removed.has(entry)) return false
    const i = this.#items.indexOf(entry, this.#head)
    if (i === -1) return false
    if (i === this.#head) {
      this.#items[this.#head++] = undefined
      this.#compact()
    } else {
      this.#removed.add(entry)
    }
    this.#size--
    return true
  }

  /** Removes and returns every entry, in order. */
  clear (): T[] {
    const out: T[] = []
    for (let e = this.shift(); e !== undefined; e = this.shift()) out.push(e)
    return out
  }

  #skipRemoved (): void {
    while (this.#removed.size > 0 && this.#head < this.#items.length) {
      const e = this.#items[this.#head]
      if (e === undefined || !this.#removed.has(e)) return
      this.#removed.delete(e)
      this.#items[this.#head++] = undefined
    }
  }

  #compact (): void {
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
      this.#removed.clear()
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}
