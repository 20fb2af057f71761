// Handler loading (app-loader.ts) and the small pure helpers of handler-context.ts.

import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cachedHandler, describeValue, handlerFromModule, loadHandler } from '../../../src/worker/app-loader.ts'
import fc from 'fast-check'
import { HandlerContext, serializeError } from '../../../src/worker/handler-context.ts'
import { buildEnv } from '../../../src/worker/env.ts'
import type { RequestState } from '../../../src/worker/handler-context.ts'

const APPS = fileURLToPath(new URL('../../fixtures/apps/', import.meta.url))
const ctx = new HandlerContext(null as unknown as RequestState) // not called by these handlers

describe('loadHandler', () => {
  it('loads .mjs, .ts, .cjs and fetch objects (bound), once per thread', async () => {
    const request = new Request('http://h/path')
    const cases: Array<[string, string]> = [
      ['hello.mjs', 'hello'],
      ['typed.ts', 'hello from ts /path'],
      ['commonjs.cjs', 'hello from cjs GET'],
      ['object.mjs', 'hi from object pool-value']
    ]
    for (const [file, expected] of cases) {
      const script = join(APPS, file)
      const handler = await loadHandler(script)
      const response = await handler(request, { POOL_VAR: 'pool-value' }, ctx) as Response
      assert.equal(await response.text(), expected, file)
      assert.equal(cachedHandler(script), handler)
      assert.equal(await loadHandler(script), handler)
    }
  })

  it('refuses an export that is neither a function nor an object with fetch', async () => {
    const script = join(APPS, 'invalid-export.mjs')
    await assert.rejects(loadHandler(script), {
      code: 'FPM_ERR_HANDLER_INVALID',
      message: `${script}: the default export must be a function or an object with a fetch() method; found the number 42`
    })
    assert.equal(cachedHandler(script), undefined)
  })

  const dir = mkdtempSync(join(tmpdir(), 'fpm-loader-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('does not cache failures: a script that appears later loads', async () => {
    const script = join(dir, 'later.mjs')
    await assert.rejects(loadHandler(script), { code: 'ERR_MODULE_NOT_FOUND' })
    writeFileSync(script, 'export default () => new Response("now here")\n')
    const handler = await loadHandler(script)
    assert.equal(await (await handler(new Request('http://h/'), {}, ctx) as Response).text(), 'now here')
  })

  it('concurrent loads share one import', async () => {
    const script = join(dir, 'shared.mjs')
    writeFileSync(script, 'globalThis.fpmLoads = (globalThis.fpmLoads ?? 0) + 1\nexport default () => new Response("x")\n')
    const [a, b] = await Promise.all([loadHandler(script), loadHandler(script)])
    assert.equal(a, b)
    assert.equal((globalThis as { fpmLoads?: number }).fpmLoads, 1)
  })
})

describe('handlerFromModule / describeValue', () => {
  it('says what was found', () => {
    assert.throws(() => handlerFromModule('/a.mjs', {}), { message: /found no exports at all$/ })
    assert.throws(() => handlerFromModule('/a.mjs', { fetch: () => null }), { message: /found no default export \(exports: fetch\)$/ })
    assert.throws(() => handlerFromModule('/a.mjs', { default: { get: 1 } }), { message: /found an object without a fetch\(\) method$/ })
    assert.throws(() => handlerFromModule('/a.mjs', { default: { fetch: 'no' } }), { message: /found an object whose fetch is not a function$/ })
    assert.throws(() => handlerFromModule('/a.mjs', { default: undefined }), { message: /found undefined$/ })
    assert.equal(describeValue(new Map()), 'a Map')
    assert.equal(describeValue('x'), 'the string "x"')
    assert.equal(describeValue(null), 'null')
  })
})

describe('buildEnv', () => {
  it('starts from the pool env, then every param (params win)', () => {
    const env = buildEnv(['REQUEST_URI', '/x', 'SHARED', 'from-param'], { POOL_VAR: 'pv', SHARED: 'from-pool' })
    assert.deepEqual(env, { POOL_VAR: 'pv', SHARED: 'from-param', REQUEST_URI: '/x' })
  })

  it('is a fresh object each time and survives a "__proto__" param', () => {
    const pool = Object.freeze({ A: '1' })
    const env = buildEnv(['__proto__', 'x'], pool)
    assert.notEqual(env, pool)
    assert.equal(Object.getPrototypeOf(env), Object.prototype)
    assert.equal(Object.getOwnPropertyDescriptor(env, '__proto__')?.value, 'x')
  })

  it('is the object the params make, whatever the names and however often they come (compiled shapes)', () => {
    // The same pool env object, as in a thread; names with quotes, backslashes, line separators, lone
    // surrogates, '__proto__' and integer-like names; each list comes three times with other values,
    // so that its shape is compiled; some lists are longer than the shapes kept.
    const pool = Object.freeze({ SHARED: 'pool', 7: 'seven', 'quote"\\': 'q' })
    const name = fc.oneof(
      fc.constantFrom('REQUEST_URI', 'HTTP_HOST', 'SHARED', '__proto__', 'QUERY_STRING', 'X', 'x', '', '7', '10', 'a"b', 'c\\d', 'l\u2028s', 'e\nf', '\ud800'),
      fc.string({ maxLength: 6 }))
    const names = fc.oneof(fc.array(name, { maxLength: 12 }), fc.array(name, { minLength: 30, maxLength: 40 }))
    fc.assert(fc.property(fc.array(names, { minLength: 1, maxLength: 20 }), fc.string({ maxLength: 3 }), (lists, salt) => {
      for (const list of lists) {
        for (let round = 0; round < 3; round++) {
          const pairs = list.map((n, i): [string, string] => [n, `${salt}${round}:${i}`])
          const expected: Record<string, string> = {}
          for (const [k, v] of [...Object.entries(pool), ...pairs]) Object.defineProperty(expected, k, { value: v, enumerable: true, writable: true, configurable: true })
          const env = buildEnv(pairs.flat(), pool)
          assert.deepEqual(Object.entries(env), Object.entries(expected))
          assert.equal(Object.getPrototypeOf(env), Object.prototype)
          assert.ok(Object.isExtensible(env) && !Object.isFrozen(env))
        }
      }
    }), { numRuns: 200 })
  })

  it('works where code cannot be generated from strings (--disallow-code-generation-from-strings)', () => {
    const envModule = fileURLToPath(new URL('../../../src/worker/env.ts', import.meta.url))
    const code = `import { buildEnv } from ${JSON.stringify(envModule)}
const pool = { A: '1' }
const out = []
for (let i = 0; i < 3; i++) out.push(buildEnv(['X', String(i), '__proto__', 'p'], pool))
console.log(JSON.stringify(out.map((e) => Object.entries(e))))`
    const stdout = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', code], { encoding: 'utf8' })
    assert.deepEqual(JSON.parse(stdout), [0, 1, 2].map((i) => [['A', '1'], ['X', String(i)], ['__proto__', 'p']]))
  })
})

describe('serializeError', () => {
  it('keeps name, message, stack and a string code', () => {
    const err = Object.assign(new TypeError('bad'), { code: 'E_BAD' })
    const s = serializeError(err)
    assert.equal(s.name, 'TypeError')
    assert.equal(s.message, 'bad')
    assert.equal(s.code, 'E_BAD')
    assert.match(s.stack, /TypeError: bad/)
  })

  it('appends causes to the stack and turns numeric codes into strings', () => {
    const err = Object.assign(new Error('outer', { cause: new Error('inner') }), { code: 42 })
    const s = serializeError(err)
    assert.match(s.stack, /\[cause\]: Error: inner/)
    assert.equal(s.code, '42')
  })

  it('copes with non-errors and hostile values', () => {
    assert.deepEqual(serializeError('plain'), { name: 'Error', message: 'plain', stack: '', code: null })
    assert.equal(serializeError({ a: 1 }).message, '{ a: 1 }')
    assert.equal(serializeError(undefined).message, 'undefined')
    const hostile = new Proxy({}, { get () { throw new Error('no') }, getPrototypeOf () { throw new Error('no') } })
    assert.equal(typeof serializeError(hostile).message, 'string')
    assert.doesNotThrow(() => structuredClone(serializeError(new Error('x'))))
  })
})
