// The pool's FIFO of waiting requests (src/pool/request-queue.ts): order, removal from the middle,
// the head after removals, unshift, clear, and a long run that exercises compaction.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { RequestQueue } from '../../../src/pool/request-queue.ts'

interface E { readonly name: string, readonly queuedAtMs: number }
const e = (name: string, queuedAtMs = 0): E => ({ name, queuedAtMs })
const names = (q: RequestQueue<E>): string[] => q.clear().map(x => x.name)

describe('RequestQueue', () => {
  it('is first in, first out', () => {
    const q = new RequestQueue<E>()
    for (const n of ['a', 'b', 'c']) q.push(e(n))
    assert.equal(q.size, 3)
    assert.equal(q.peek()?.name, 'a')
    assert.equal(q.shift()?.name, 'a')
    assert.equal(q.size, 2)
    assert.deepEqual(names(q), ['b', 'c'])
    assert.equal(q.size, 0)
    assert.equal(q.shift(), undefined)
    assert.equal(q.peek(), undefined)
  })

  it('takes an entry out of the middle, the head or the tail', () => {
    const q = new RequestQueue<E>()
    const items = ['a', 'b', 'c', 'd', 'e'].map(n => e(n))
    for (const x of items) q.push(x)
    assert.equal(q.remove(items[2]!), true)
    assert.equal(q.remove(items[2]!), false, 'only once')
    assert.equal(q.remove(items[0]!), true)
    assert.equal(q.remove(items[4]!), true)
    assert.equal(q.size, 2)
    assert.equal(q.peek()?.name, 'b')
    assert.deepEqual(names(q), ['b', 'd'])
    assert.equal(q.remove(items[1]!), false, 'not queued any more')
  })

  it('skips removed entries when they reach the head', () => {
    const q = new RequestQueue<E>()
    const items = ['a', 'b', 'c', 'd'].map(n => e(n))
    for (const x of items) q.push(x)
    q.remove(items[1]!)
    q.remove(items[2]!)
    assert.equal(q.shift()?.name, 'a')
    assert.equal(q.peek()?.name, 'd')
    assert.equal(q.size, 1)
    assert.equal(q.shift()?.name, 'd')
    assert.equal(q.size, 0)
  })

  it('puts an entry back at the head', () => {
    const q = new RequestQueue<E>()
    q.push(e('b'))
    q.push(e('c'))
    q.unshift(e('a'))
    assert.equal(q.shift()?.name, 'a')
    q.unshift(e('a2')) // into the freed slot
    assert.deepEqual(names(q), ['a2', 'b', 'c'])
  })

  it('stays in order over many pushes, shifts and removals', () => {
    const q = new RequestQueue<E>()
    const expected: string[] = []
    let seq = 0
    for (let round = 0; round < 50; round++) {
      const batch = Array.from({ length: 100 }, () => e(String(seq++)))
      for (const x of batch) { q.push(x); expected.push(x.name) }
      // remove every 7th of this batch
      for (let i = 0; i < batch.length; i += 7) {
        assert.ok(q.remove(batch[i]!))
        expected.splice(expected.indexOf(batch[i]!.name), 1)
      }
      for (let i = 0; i < 60; i++) assert.equal(q.shift()?.name, expected.shift())
      assert.equal(q.size, expected.length)
    }
    assert.deepEqual(names(q), expected)
  })
})
