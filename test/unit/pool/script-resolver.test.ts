// pool/script-resolver.ts on a real directory: SCRIPT_FILENAME inside the root, outside it (a
// symlink), missing, with an extension security.limit_extensions refuses, and requests that
// alternate between scripts (the last answer is kept apart from the cache: it must not leak into
// the next request's).

import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ScriptResolver } from '../../../src/pool/script-resolver.ts'

const base = realpathSync(mkdtempSync(join(tmpdir(), 'fpm-resolver-')))
const root = join(base, 'root')
mkdirSync(root)
writeFileSync(join(root, 'a.mjs'), '')
writeFileSync(join(root, 'b.mjs'), '')
writeFileSync(join(root, 'notes.txt'), '')
writeFileSync(join(base, 'outside.mjs'), '')
symlinkSync(join(base, 'outside.mjs'), join(root, 'escape.mjs'))
after(() => { rmSync(base, { recursive: true, force: true }) })

const resolver = new ScriptResolver({ root, handler: null, limitExtensions: ['.mjs', '.js'] })

describe('ScriptResolver', () => {
  test('a script inside the root, by its real path', () => {
    assert.deepEqual(resolver.resolve(join(root, 'a.mjs')), { kind: 'ok', script: join(root, 'a.mjs') })
    assert.deepEqual(resolver.resolve(join(root, 'sub', '..', 'b.mjs')), { kind: 'ok', script: join(root, 'b.mjs') })
  })

  test('missing, outside the root through a symlink, no SCRIPT_FILENAME, not absolute: not found', () => {
    assert.equal(resolver.resolve(join(root, 'missing.mjs')).kind, 'not-found')
    assert.equal(resolver.resolve(join(root, 'escape.mjs')).kind, 'not-found')
    assert.equal(resolver.resolve(undefined).kind, 'not-found')
    assert.equal(resolver.resolve('a.mjs').kind, 'not-found')
  })

  test('an extension outside security.limit_extensions is denied', () => {
    assert.deepEqual(resolver.resolve(join(root, 'notes.txt')), { kind: 'denied', script: join(root, 'notes.txt') })
  })

  test('requests alternating between scripts each get their own answer', () => {
    const names = ['a.mjs', 'a.mjs', 'notes.txt', 'b.mjs', 'missing.mjs', 'b.mjs', 'a.mjs']
    const expected = ['ok', 'ok', 'denied', 'ok', 'not-found', 'ok', 'ok']
    for (let round = 0; round < 3; round++) {
      names.forEach((name, i) => {
        const result = resolver.resolve(join(root, name))
        assert.equal(result.kind, expected[i], name)
        if (result.kind === 'ok') assert.equal(result.script, join(root, name))
      })
    }
  })

  test('a pool with a handler serves every request with it', () => {
    const front = new ScriptResolver({ root: null, handler: join(root, 'a.mjs'), limitExtensions: [] })
    assert.deepEqual(front.resolve(undefined), { kind: 'ok', script: join(root, 'a.mjs') })
    assert.deepEqual(front.resolve('/anything'), { kind: 'ok', script: join(root, 'a.mjs') })
  })
})
