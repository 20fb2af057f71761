// pools.d/www.conf is the documented example: it must list every pool directive of the table,
// in table order, and nothing else, and the repository's pools.d must load as `npm start` loads
// it. Also: Debian's php8.2-fpm www.conf (test/fixtures/config/debian-www.conf) loads unchanged
// (plus the `root` node-fpm needs) with notices only.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { DIRECTIVES } from '../../../src/config/directives.ts'
import { loadConfig } from '../../../src/config/load.ts'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const WWW_CONF = path.join(REPO, 'pools.d/www.conf')
const DEBIAN = path.join(REPO, 'test/fixtures/config/debian-www.conf')

/** Directive names of `name = ...` and `;name = ...` lines, in order of first appearance. */
function directivesIn (text: string): string[] {
  const names: string[] = []
  for (const line of text.split('\n')) {
    const m = /^;?([A-Za-z_.]+)(\[[^\]]*\])?\s*=/.exec(line)
    if (m !== null && !names.includes(m[1] as string)) names.push(m[1] as string)
  }
  return names
}

describe('pools.d/www.conf', () => {
  const poolDirectives = DIRECTIVES.filter(d => d.scope === 'pool').map(d => d.name)

  it('lists every pool directive of the table, in table order, and no other', () => {
    const listed = directivesIn(fs.readFileSync(WWW_CONF, 'utf8'))
    assert.deepEqual(listed.filter(n => !poolDirectives.includes(n)), [], 'not in the table')
    assert.deepEqual(poolDirectives.filter(n => !listed.includes(n)), [], 'missing from www.conf')
    assert.deepEqual(listed, poolDirectives)
  })

  it('loads as `npm start` loads it (cwd = the repository), with no error and no notice', () => {
    const r = loadConfig({ cwd: REPO, env: {} })
    assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
    assert.deepEqual(r.notices, [])
    const www = r.config.pools[0]
    assert.equal(r.config.pools.length, 1)
    assert.equal(www?.name, 'www')
    assert.deepEqual(www?.listen.target, { kind: 'tcp', host: '127.0.0.1', port: 9000 })
    assert.equal(www?.pm.mode, 'static')
    assert.equal(www?.root, fs.realpathSync(path.join(REPO, 'examples')))
  })

  it('still loads when every commented directive line is uncommented', () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-www-')))
    try {
      fs.mkdirSync(path.join(dir, 'pools.d'))
      fs.mkdirSync(path.join(dir, 'examples'))
      fs.writeFileSync(path.join(dir, 'examples/index.mjs'), '')
      fs.mkdirSync(path.join(dir, 'srv/www/examples'), { recursive: true })
      fs.writeFileSync(path.join(dir, 'srv/www/examples/index.mjs'), '')
      const text = fs.readFileSync(WWW_CONF, 'utf8').split('\n')
        .map(l => /^;[A-Za-z_.]+(\[[^\]]*\])?\s*=/.test(l) ? l.slice(1) : l)
        .map(l => l.startsWith('prefix =') ? `prefix = ${dir}/srv/$pool` : l)
        .join('\n')
      fs.writeFileSync(path.join(dir, 'pools.d/www.conf'), text)
      const r = loadConfig({ cwd: dir, env: { HOSTNAME: 'h' } })
      assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("Debian php8.2-fpm's www.conf", () => {
  let dir: string
  before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-debian-'))) })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('loads with notices only (user, group), once node-fpm gets a root', () => {
    fs.mkdirSync(path.join(dir, 'pools.d'))
    const file = path.join(dir, 'pools.d/www.conf')
    fs.writeFileSync(file, `${fs.readFileSync(DEBIAN, 'utf8')}\nroot = ${dir}\n`)
    const r = loadConfig({ cwd: dir, env: {} })
    assert.ok(r.ok, r.ok ? '' : r.errors.map(e => e.message).join('\n'))
    assert.deepEqual(r.notices.map(n => n.level), ['notice', 'notice'])
    assert.match(r.notices[0]?.message ?? '', /^\[.*www\.conf:\d+\] 'user' is ignored: threads share the server's uid/)
    assert.match(r.notices[1]?.message ?? '', /^\[.*www\.conf:\d+\] 'group' is ignored: threads share the server's gid/)
    const www = r.config.pools[0]
    assert.deepEqual(www?.listen.target, { kind: 'unix', path: '/run/php/php8.2-fpm.sock' })
    assert.equal(www?.listen.owner, 'www-data')
    assert.deepEqual([www?.pm.mode, www?.pm.maxChildren, www?.pm.startServers, www?.pm.minSpareServers, www?.pm.maxSpareServers],
      ['dynamic', 5, 2, 1, 3])
  })
})
