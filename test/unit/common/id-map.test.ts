// IdMap against a Map: the same answers for any sequence of operations (with capacities that make
// ids share a slot, so that the Map behind the slots is used too), and forEach's snapshot.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { IdMap } from '../../../src/common/id-map.ts'

type Op =
  | { op: 'set', id: number, value: number }
  | { op: 'delete', id: number }
  | { op: 'get', id: number }
  | { op: 'clear' }

// Few ids, so that sets, deletes and gets meet the same ones, with one or several present at once.
const id = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), id, value: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), id }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('get' as const), id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const) }) }
)

function sorted (values: number[]): number[] {
  return [...values].sort((a, b) => a - b)
}

describe('IdMap', () => {
  it('answers as a Map does for any sequence of set, delete, get and clear', () => {
    fc.assert(fc.property(fc.constantFrom(1, 2, 3, 8), fc.array(opArb, { maxLength: 60 }), (capacity, ops) => {
      const model = new Map<number, number>()
      const map = new IdMap<number>(capacity)
      for (const o of ops) {
        switch (o.op) {
          case 'set': model.set(o.id, o.value); map.set(o.id, o.value); break
          case 'delete': assert.equal(map.delete(o.id), model.delete(o.id)); break
          case 'get': assert.equal(map.get(o.id), model.get(o.id)); break
          case 'clear': model.clear(); map.clear(); break
        }
        assert.equal(map.size, model.size)
        assert.deepEqual(sorted(map.values()), sorted([...model.values()]))
        const seen: number[] = []
        map.forEach((v) => { seen.push(v) })
        assert.deepEqual(sorted(seen), sorted([...model.values()]))
      }
    }), { numRuns: process.env.CI === undefined ? 2000 : 10000 })
  })

  it('forEach gives the values present when it is called, whatever the callback changes', () => {
    const map = new IdMap<string>(2)
    map.set(1, 'one')
    map.set(2, 'two')
    map.set(3, 'three')
    const seen: string[] = []
    map.forEach((v) => {
      seen.push(v)
      map.delete(1)
      map.delete(2)
      map.delete(3)
      map.set(4, 'four')
    })
    assert.deepEqual(seen.sort(), ['one', 'three', 'two'])
    assert.equal(map.size, 1)
    assert.equal(map.get(4), 'four')

    const single = new IdMap<string>(8)
    single.set(7, 'seven')
    const got: string[] = []
    single.forEach((v) => { got.push(v); single.delete(7); single.set(8, 'eight') })
    assert.deepEqual(got, ['seven'])
    assert.equal(single.get(8), 'eight')
  })
})
