// src/bench/pacer.ts, on the real clock: the open loop's requests go out one by one near their due
// time (not in the bursts of a millisecond timer), the event loop keeps running while it waits.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Pacer } from '../../../src/bench/pacer.ts'
import { median } from '../../../bench/figures.ts'

describe('Pacer', () => {
  test('a request due every 0.2 ms goes out on its own, not ~5 at once as a millisecond timer sends them', async () => {
    const intervalMs = 0.2
    const count = 300
    const batches: number[] = []
    let seq = 0
    const start = performance.now() + 1
    await new Promise<void>((resolve) => {
      const pacer = new Pacer(() => start + seq * intervalMs, () => {
        const now = performance.now()
        let sent = 0
        for (let due = start + seq * intervalMs; due <= now && seq < count; due = start + seq * intervalMs) {
          seq++
          sent++
        }
        if (sent > 0) batches.push(sent)
        if (seq === count) {
          pacer.stop()
          resolve()
        }
      }, () => true)
      pacer.start()
    })
    assert.equal(batches.reduce((a, b) => a + b, 0), count)
    // setTimeout pacing (Node's timers count whole milliseconds) sends 5-6 per batch here.
    assert.ok(median(batches) <= 2, `median batch ${median(batches)}: ${batches.slice(0, 40).join(' ')}`)
  })

  test('far from the next due time it waits on a timer: the event loop runs meanwhile', async () => {
    const due = performance.now() + 60
    let fired = 0
    const pacer = new Pacer(() => due, () => { if (performance.now() >= due) fired++ }, () => false)
    const askedAt = performance.now()
    const timerLate = new Promise<number>((resolve) => { setTimeout(() => { resolve(performance.now() - askedAt - 10) }, 10) })
    pacer.start()
    try {
      const timerLateMs = await timerLate
      // A pacer sleeping in the thread until the due time would hold this timer back ~50 ms.
      assert.ok(timerLateMs < 30, `a 10 ms timer fired ${timerLateMs.toFixed(1)} ms late`)
      await new Promise((resolve) => setTimeout(resolve, 80))
      assert.ok(fired >= 1, 'the due time was reached')
    } finally {
      pacer.stop()
    }
  })

  test('close to a due time it sleeps in slices while a response is expected, in one go when none is', async () => {
    const stepsBefore = async (waiting: boolean): Promise<number> => {
      let steps = 0
      const due = performance.now() + 1.9
      await new Promise<void>((resolve) => {
        const pacer = new Pacer(() => due, () => {
          if (performance.now() >= due) {
            pacer.stop()
            resolve()
          } else {
            steps++
          }
        }, () => waiting)
        pacer.start()
      })
      return steps
    }
    // The most of 5 tries: the window is under 2 ms, and a pause of the machine eats it.
    let sliced = 0
    let whole = 0
    for (let i = 0; i < 5; i++) {
      sliced = Math.max(sliced, await stepsBefore(true))
      whole = Math.max(whole, await stepsBefore(false))
    }
    // Between slices (0.05 ms) the event loop polls and the pacer looks again: many steps.
    assert.ok(sliced >= 4, `${sliced} steps while waiting for a response`)
    assert.ok(whole <= 2, `${whole} steps with nothing expected`)
  })

  test('stop: nothing fires after it', async () => {
    let fired = 0
    const pacer = new Pacer(() => performance.now() + 0.1, () => { fired++ }, () => true)
    pacer.start()
    pacer.stop()
    const atStop = fired
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(fired, atStop)
  })
})
