// The open loop's clock (load-generator.ts): calls `fire` close to each due time.
//
// Node's timers count whole milliseconds (libuv), so an open loop paced by setTimeout at 10,000
// req/s sends a burst of ~10 requests once a millisecond, each up to 1 ms late: its p99 was mostly
// the generator's own lateness (p90 0.9 ms, p99 1.1 ms of sends after their due time, against a
// server answering in 0.15 ms). Close to a due time the pacer sleeps in the thread itself
// (Atomics.wait takes fractional milliseconds), in slices while responses are expected, and lets
// the event loop poll between the slices (setImmediate), so a response is read within a slice.
// Far from one, it waits on a timer, which costs nothing.

import { performance } from 'node:perf_hooks'

/** Closer than this to the next due time, the pacer sleeps in the thread (a timer would be up to 1 ms late). */
const TIMER_MARGIN_MS = 2
/** Longest timer: a due time further away (or none, Infinity) is looked at again after this. */
const MAX_TIMER_MS = 1000
/** Longest sleep while a response may arrive: it is read at most this late. */
const SLICE_MS = 0.05

export class Pacer {
  readonly #nextDue: () => number
  readonly #fire: () => void
  readonly #waiting: () => boolean
  readonly #sleeper = new Int32Array(new SharedArrayBuffer(4))
  #timer: NodeJS.Timeout | null = null
  #immediate: NodeJS.Immediate | null = null
  #stopped = false

  /**
   * `nextDue`: the next due time (performance.now() scale; Infinity: none). `fire`: sends what is
   * due. `waiting`: whether a response is expected (then the pacer sleeps only a slice at a time).
   */
  constructor (nextDue: () => number, fire: () => void, waiting: () => boolean) {
    this.#nextDue = nextDue
    this.#fire = fire
    this.#waiting = waiting
  }

  start (): void {
    this.#step()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#immediate !== null) clearImmediate(this.#immediate)
    this.#timer = null
    this.#immediate = null
  }

  readonly #step = (): void => {
    this.#timer = null
    this.#immediate = null
    if (this.#stopped) return
    this.#fire()
    const waitMs = this.#nextDue() - performance.now()
    if (waitMs > TIMER_MARGIN_MS) {
      this.#timer = setTimeout(this.#step, Math.min(waitMs - TIMER_MARGIN_MS, MAX_TIMER_MS))
      return
    }
    if (waitMs > 0) Atomics.wait(this.#sleeper, 0, 0, this.#waiting() ? Math.min(waitMs, SLICE_MS) : waitMs)
    this.#immediate = setImmediate(this.#step)
  }
}
