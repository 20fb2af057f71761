// Unit tests of the ini reader (src/config/ini-parser.ts): one line at a time as php-fpm feeds
// Zend's scanner (quotes, escapes, ${ENV} and ${ENV:-default}, boolean words, comments,
// arrays, syntax errors), and `include` (sorted globs relative to the prefix, depth 5, the
// "Nothing matches" warning).

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseLine, readConfigFile, readInclude } from '../../../src/config/ini-parser.ts'
import type { Env, IniItem } from '../../../src/config/ini-parser.ts'

const ENV: Env = { HOME: '/home/fpm', EMPTY: '', WORD: 'yes' }

function valueOf (line: string, env: Env = ENV): string {
  const r = parseLine(`x = ${line}`, env)
  assert.equal(r.kind, 'entry', JSON.stringify(r))
  return r.kind === 'entry' ? r.value : ''
}

function errorOf (line: string): string {
  const r = parseLine(line, ENV)
  assert.equal(r.kind, 'error', JSON.stringify(r))
  return r.kind === 'error' ? r.reason : ''
}

describe('parseLine: structure', () => {
  it('skips blank lines and ; and # comments', () => {
    for (const line of ['', '   \t', '; comment', '  ;x = 1', '# hash comment', '#x = 1']) {
      assert.deepEqual(parseLine(line, ENV), { kind: 'blank' })
    }
  })
  it('reads sections, trimmed, with a trailing comment', () => {
    assert.deepEqual(parseLine('[www]', ENV), { kind: 'section', name: 'www' })
    assert.deepEqual(parseLine('  [ Global ] ; main', ENV), { kind: 'section', name: 'Global' })
  })
  it('reads name = value with spaces and tabs trimmed', () => {
    assert.deepEqual(parseLine('\tpm.max_children\t=  5  ', ENV), { kind: 'entry', name: 'pm.max_children', key: null, value: '5' })
    assert.deepEqual(parseLine('listen=127.0.0.1:9000', ENV), { kind: 'entry', name: 'listen', key: null, value: '127.0.0.1:9000' })
  })
  it('reads array entries, with an empty key for []', () => {
    assert.deepEqual(parseLine('env[PATH] = /bin', ENV), { kind: 'entry', name: 'env', key: 'PATH', value: '/bin' })
    assert.deepEqual(parseLine('access.suppress_path[] = /ping', ENV), { kind: 'entry', name: 'access.suppress_path', key: '', value: '/ping' })
    assert.deepEqual(parseLine('php_value[ error_log ] = x', ENV), { kind: 'entry', name: 'php_value', key: 'error_log', value: 'x' })
  })
  it('reads an empty value', () => {
    assert.deepEqual(parseLine('ping.response =', ENV), { kind: 'entry', name: 'ping.response', key: null, value: '' })
  })
  it('ends a value at ; (php: `10s;` works)', () => {
    assert.equal(valueOf('10s; comment'), '10s')
    assert.equal(valueOf('foo bar ; comm'), 'foo bar')
  })
})

describe('parseLine: values as Zend scans them', () => {
  it('unescapes \\" \\\\ \\$ in double quotes and keeps other backslashes', () => {
    assert.equal(valueOf('"x\\"y\\\\z\\$w\\n"'), 'x"y\\z$w\\n')
  })
  it('keeps single-quoted text raw', () => {
    assert.equal(valueOf("'r\\a\"w ${HOME} ; no comment'"), 'r\\a"w ${HOME} ; no comment')
  })
  it('keeps ; and = inside quotes', () => {
    assert.equal(valueOf('"a;b=c"'), 'a;b=c')
  })
  it('concatenates segments, trimming bare text', () => {
    assert.equal(valueOf('a "b" c'), 'abc')
    assert.equal(valueOf('"/srv/"app\'/x\''), '/srv/app/x')
  })
  it('turns bare boolean words into 1 and empty', () => {
    for (const w of ['yes', 'On', 'TRUE']) assert.equal(valueOf(w), '1')
    for (const w of ['no', 'off', 'False', 'none', 'null']) assert.equal(valueOf(w), '')
  })
  it('keeps quoted boolean words and words from ${ENV}', () => {
    assert.equal(valueOf('"yes"'), 'yes')
    assert.equal(valueOf('${WORD}'), 'yes')
  })
  it('expands ${NAME} bare and in double quotes', () => {
    assert.equal(valueOf('${HOME}/x'), '/home/fpm/x')
    assert.equal(valueOf('"${HOME}"'), '/home/fpm')
    assert.equal(valueOf('"a ${HOME} b"'), 'a /home/fpm b')
  })
  it('expands a missing variable to an empty string', () => {
    assert.equal(valueOf('${NOPE}/x'), '/x')
  })
  it('uses the ${NAME:-fallback} only when NAME is not set (php 8.3)', () => {
    assert.equal(valueOf('${NOPE:-/tmp/x}'), '/tmp/x')
    assert.equal(valueOf('"${NOPE:-def} y"'), 'def y')
    assert.equal(valueOf('${HOME:-/tmp}'), '/home/fpm')
    assert.equal(valueOf('${EMPTY:-def}'), '')
  })
  it('keeps $pool and $NAME for later (they are not ${...})', () => {
    assert.equal(valueOf('/run/$pool.sock'), '/run/$pool.sock')
    assert.equal(valueOf('$HOME'), '$HOME')
  })
  it('keeps constants and operators as text (not evaluated, unlike php)', () => {
    assert.equal(valueOf('E_ALL & ~E_NOTICE'), 'E_ALL & ~E_NOTICE')
  })
})

describe('parseLine: syntax errors', () => {
  const cases: Array<[string, string]> = [
    ['[broken', "syntax error, unexpected end of line, expecting ']'"],
    ['[]', 'syntax error, empty section name'],
    ['[www] x', "syntax error, unexpected 'x' after section [www]"],
    ['foo', "syntax error, expecting '=' after 'foo'"],
    ['foo ; comment', "syntax error, expecting '=' after 'foo'"],
    ['= 1', "syntax error, unexpected '='"],
    ['env[A] = a=b', "syntax error, unexpected '='"],
    ['env[A] = "unterminated', 'syntax error, unterminated double-quoted string'],
    ["env[A] = 'unterminated", 'syntax error, unterminated single-quoted string'],
    ['x = ${HOME', "syntax error, unterminated '${'"],
    ['x = "${HOME"', "syntax error, unterminated '${'"],
    ['env[A = 1', "syntax error, expecting ']' after 'env[A'"],
    ['env[A]x = 1', "syntax error, expecting ']' after 'env[A]x'"],
    ['[A] = 1', "syntax error, unexpected '= 1' after section [A]"],
    ['a"b = 1', "syntax error, unexpected '\"' in 'a\"b'"]
  ]
  for (const [line, reason] of cases) it(`${line}`, () => assert.equal(errorOf(line), reason))
})

describe('readConfigFile and include', () => {
  let dir: string
  before(() => { dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fpm-ini-'))) })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  function write (rel: string, text: string): string {
    const file = path.join(dir, rel)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text)
    return file
  }
  const sections = (items: IniItem[]) => items.filter(i => i.type === 'section').map(i => i.name)

  it('gives every item its file and line; CRLF files read the same', () => {
    const file = write('crlf/main.conf', '; head\r\n[global]\r\nlog_level = debug\r\n\r\n[www]\r\n')
    const r = readConfigFile(file, { prefix: dir, env: {} })
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.items, [
      { type: 'section', name: 'global', file, line: 2 },
      { type: 'entry', name: 'log_level', key: null, value: 'debug', file, line: 3 },
      { type: 'section', name: 'www', file, line: 5 }
    ])
  })

  it('reports a syntax error with [file:line] and goes on with the next lines', () => {
    const file = write('syntax/main.conf', '[www]\nlisten = "x\npm = static\n')
    const r = readConfigFile(file, { prefix: dir, env: {} })
    assert.deepEqual(r.errors.map(e => [e.code, e.message]), [['FPM_ERR_CONFIG_SYNTAX', `[${file}:2] syntax error, unterminated double-quoted string`]])
    assert.deepEqual(r.items.map(i => i.line), [1, 3])
  })

  it('bug68391-conf-include-order: includes in alphabetical order, in place', () => {
    for (const name of ['e', 'a', 'c', 'b', 'd']) write(`order/pools/${name}.conf`, `[${name}]\n`)
    fs.mkdirSync(path.join(dir, 'order/pools/f.conf'))
    const main = write('order/main.conf', '[global]\ninclude = pools/*.conf\n[last]\n')
    const r = readConfigFile(main, { prefix: path.join(dir, 'order'), env: {} })
    assert.deepEqual(r.errors, [])
    assert.deepEqual(sections(r.items), ['global', 'a', 'b', 'c', 'd', 'e', 'last'])
  })

  it('resolves include patterns against the prefix, not the including file', () => {
    write('pfx/conf/pools/one.conf', '[one]\n')
    write('pfx/pools/two.conf', '[two]\n')
    const main = write('pfx/conf/main.conf', 'include = pools/*.conf\ninclude = ${SUB}/one.conf\n')
    const r = readConfigFile(main, { prefix: path.join(dir, 'pfx'), env: { SUB: path.join(dir, 'pfx/conf/pools') } })
    assert.deepEqual(sections(r.items), ['two', 'one'])
  })

  it('warns when nothing matches the include pattern, without failing', () => {
    const main = write('nomatch/main.conf', '[www]\ninclude = none/*.conf\n')
    const r = readConfigFile(main, { prefix: path.join(dir, 'nomatch'), env: {} })
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.notices, [{
      level: 'warning',
      message: `Nothing matches the include pattern '${path.join(dir, 'nomatch/none/*.conf')}' from ${main} at line 2.`
    }])
  })

  it('includes 5 files deep, not 6: "failed to include more than 5 files recursively"', () => {
    // main (1) -> l2 -> l3 -> l4 -> l5 is fine; l5 -> l6 is one too many.
    write('deep/l6.conf', '[six]\n')
    for (let n = 5; n >= 2; n--) write(`deep/l${n}.conf`, `[level${n}]\ninclude = l${n + 1}.conf\n`)
    const main = write('deep/main.conf', 'include = l2.conf\n')
    const r = readConfigFile(main, { prefix: path.join(dir, 'deep'), env: {} })
    assert.deepEqual(sections(r.items), ['level2', 'level3', 'level4', 'level5'])
    assert.deepEqual(r.errors.map(e => [e.code, e.message]), [
      ['FPM_ERR_CONFIG_INCLUDE', `[${path.join(dir, 'deep/l5.conf')}:2] failed to include more than 5 files recursively`]
    ])
  })

  it('stops a file that includes itself at the depth limit', () => {
    const main = write('self/main.conf', '[www]\ninclude = main.conf\n')
    const r = readConfigFile(main, { prefix: path.join(dir, 'self'), env: {} })
    assert.equal(r.errors.length, 1)
    assert.match(r.errors[0]?.message ?? '', /failed to include more than 5 files recursively$/)
  })

  it('says when the main file cannot be opened, with the system error', () => {
    const missing = path.join(dir, 'missing.conf')
    const r = readConfigFile(missing, { prefix: dir, env: {} })
    assert.deepEqual(r.errors.map(e => [e.code, e.message]), [
      ['FPM_ERR_CONFIG', `failed to open configuration file '${missing}': No such file or directory (2)`]
    ])
  })

  it('readInclude reads a pattern without a main file and warns without "from"', () => {
    write('bare/pools.d/www.conf', '[www]\n')
    assert.deepEqual(sections(readInclude('pools.d/*.conf', null, { prefix: path.join(dir, 'bare'), env: {} }).items), ['www'])
    const r = readInclude('pools.d/*.conf', null, { prefix: path.join(dir, 'empty'), env: {} })
    assert.deepEqual(r.notices, [{ level: 'warning', message: `Nothing matches the include pattern '${path.join(dir, 'empty/pools.d/*.conf')}'.` }])
  })
})
