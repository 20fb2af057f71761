// What a pm.accept = threads thread writes of its requests in shared memory, and what the main
// thread reads back (common/request-texts.ts): the request by its id, nothing once a later request
// took its entry, a long URI cut at the entry's size, UTF-8 kept whole.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { REQUEST_TEXTS, RequestTextWriter, createRequestTexts, readRequestText } from '../../../src/common/request-texts.ts'

describe('request texts', () => {
  test('written by id, read back by id; an entry taken by a later request no longer answers for the old one', () => {
    const texts = createRequestTexts()
    const writer = new RequestTextWriter(texts)
    writer.write(7, 'GET', '/a.mjs?x=1', '/srv/a.mjs')
    writer.write(8, 'POST', '/b.mjs', '/srv/b.mjs')
    assert.deepEqual(readRequestText(texts, 7), { method: 'GET', uri: '/a.mjs?x=1', script: '/srv/a.mjs' })
    assert.deepEqual(readRequestText(texts, 8), { method: 'POST', uri: '/b.mjs', script: '/srv/b.mjs' })
    assert.equal(readRequestText(texts, 9), null, 'never written')
    writer.write(7 + REQUEST_TEXTS, 'GET', '/later.mjs', '/srv/later.mjs')
    assert.equal(readRequestText(texts, 7), null)
    assert.equal(readRequestText(texts, 7 + REQUEST_TEXTS)?.uri, '/later.mjs')
  })

  test('a long URI is cut at the entry size; UTF-8 text comes back whole', () => {
    const texts = createRequestTexts()
    const writer = new RequestTextWriter(texts)
    writer.write(1, 'GET', '/' + 'x'.repeat(2000), '/srv/x.mjs')
    const long = readRequestText(texts, 1)
    assert.equal(long?.method, 'GET')
    assert.ok(long !== null && long.uri.startsWith('/xxx') && long.uri.length < 512, String(long?.uri.length))
    writer.write(2, 'GET', '/café', '/srv/café.mjs')
    assert.deepEqual(readRequestText(texts, 2), { method: 'GET', uri: '/café', script: '/srv/café.mjs' })
  })
})
