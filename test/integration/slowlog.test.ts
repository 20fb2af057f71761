// The slowlog (src/pool/slowlog.ts): a request running longer than request_slowlog_timeout is
// logged once with php's WARNING, and an entry in php's format with the real JavaScript stack of its
// thread (function names, fixture file, line numbers, innermost first, request_slowlog_trace_depth
// at most) is appended to the pool's slowlog file; the request then completes normally. A request
// that awaits a timer gets a line saying so, a thread blocked in a system call php's
// `+++ dump failed`. Real server process, real threads, real FastCGI requests.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import { REPO, freePort, runCli, startFpm, tempDir } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'
import { request } from '../helpers/status-pages.ts'

const APPS = join(REPO, 'test/fixtures/slowlog-apps')
const WARN = 40
const INFO = 30

const config = `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
pm.status_path = /status
slowlog = {{DIR}}/www.slow
request_slowlog_timeout = 1s
request_terminate_timeout = 30s

[shallow]
listen = 127.0.0.1:{{PORT2}}
pm = static
pm.max_children = 1
root = {{ROOT}}
pm.status_path = /status
slowlog = {{DIR}}/$pool.slow
request_slowlog_timeout = 1s
request_slowlog_trace_depth = 3
`

interface Response { status: number, body: string, ms: number }

async function get (port: number, script: string, query: string): Promise<Response> {
  const t0 = Date.now()
  const conn = await FcgiConnection.connect(`127.0.0.1:${port}`)
  try {
    const res = await conn.request({ params: buildCgiParams({ uri: `/${script}?${query}`, scriptFilename: join(APPS, script) }) })
    return { status: res.status, body: res.body.toString(), ms: Date.now() - t0 }
  } finally {
    await conn.close()
  }
}

/** The 1-based line of `marker` in a fixture. */
function lineOf (script: string, marker: string): number {
  const i = readFileSync(join(APPS, script), 'utf8').split('\n').findIndex((l) => l.includes(marker))
  assert.ok(i >= 0, `${marker} in ${script}`)
  return i + 1
}

interface Entry { header: string, scriptFilename: string, lines: string[] }

/** php's slowlog: each entry is an empty line, the header, script_filename, then its lines. */
function parseEntries (text: string): Entry[] {
  const entries: Entry[] = []
  let current: Entry | null = null
  for (const line of text.split('\n')) {
    if (line === '') {
      current = null
    } else if (current === null) {
      current = { header: line, scriptFilename: '', lines: [] }
      entries.push(current)
    } else if (current.scriptFilename === '' && line.startsWith('script_filename = ')) {
      current.scriptFilename = line.slice('script_filename = '.length)
    } else {
      current.lines.push(line)
    }
  }
  return entries
}

const HEADER = /^\[\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}\]  \[pool (\S+)\] pid (\d+)$/
const FRAME = /^\[0x[0-9a-f]{16}\] (.+)\(\) (.+):(\d+)$/

function frames (entry: Entry): Array<{ fn: string, file: string, line: number }> {
  return entry.lines.map((l) => {
    const m = FRAME.exec(l)
    assert.ok(m !== null, `frame line: ${l}`)
    return { fn: m[1] as string, file: m[2] as string, line: Number(m[3]) }
  })
}

const slowLine = (uri: string) => (l: LogLine): boolean => l.level === WARN && l.uri === uri && / executing too slow /.test(l.msg)

/**
 * Runs `script?query` on `port` and returns its response, its warning line and the entries its
 * trace appended to `file` (read once the trace has finished).
 */
async function slowRequest (fpm: FpmHandle, port: number, file: string, script: string, query: string): Promise<{ res: Response, warning: LogLine, entries: Entry[] }> {
  const sizeBefore = statSync(file).size
  const res = await get(port, script, query)
  const warning = await fpm.waitForLog(slowLine(`/${script}?${query}`))
  const at = fpm.logs.indexOf(warning)
  await fpm.waitForLog((l) => l.level === INFO && l.msg === `finished trace of thread ${String(warning.thread)}` && fpm.logs.indexOf(l) > at)
  const entries = parseEntries(readFileSync(file, 'utf8').slice(sizeBefore))
  return { res, warning, entries }
}

describe('slowlog', () => {
  let fpm: FpmHandle
  let wwwSlow: string
  let shallowSlow: string
  before(async () => {
    fpm = await startFpm(config, { root: APPS, args: ['--no-supervisor'] })
    wwwSlow = join(fpm.dir, 'www.slow')
    shallowSlow = join(fpm.dir, 'shallow.slow')
  })
  after(async () => { await fpm.stop() })

  test('the slowlog files are created at start, mode 0600, empty', () => {
    for (const file of [wwwSlow, shallowSlow]) {
      const st = statSync(file)
      assert.equal(st.mode & 0o777, 0o600, file)
      assert.equal(st.size, 0)
    }
  })

  test('a busy loop: php\'s warning, one entry with the real stack (names, file, lines, innermost first), the response intact', async () => {
    const { res, warning, entries } = await slowRequest(fpm, fpm.port, wwwSlow, 'busy.mjs', 'ms=2500&t=busy')
    assert.deepEqual({ status: res.status, body: res.body }, { status: 200, body: 'busy done true' })
    assert.ok(res.ms >= 2500 && res.ms < 6000, `the request took ${res.ms} ms`)

    const thread = warning.thread as number
    assert.equal(warning.pool, 'www')
    assert.equal(warning.script, join(APPS, 'busy.mjs'))
    assert.equal(warning.method, 'GET')
    const m = new RegExp(`^thread ${thread}, script '${join(APPS, 'busy.mjs').replaceAll('.', '\\.')}' \\(request: "GET /busy\\.mjs\\?ms=2500&t=busy"\\) executing too slow \\((\\d+\\.\\d{6}) sec\\), logging$`).exec(warning.msg)
    assert.ok(m !== null, warning.msg)
    const seconds = Number(m[1])
    assert.ok(seconds >= 1 && seconds < 2.5, `${seconds} sec`)
    assert.ok(fpm.logs.some((l) => l.level === INFO && l.msg === `about to trace thread ${thread}` && l.pool === 'www'))

    assert.equal(entries.length, 1, JSON.stringify(entries))
    const entry = entries[0] as Entry
    const header = HEADER.exec(entry.header)
    assert.ok(header !== null, entry.header)
    assert.equal(header[1], 'www')
    assert.equal(Number(header[2]), thread, 'pid is the thread id')
    assert.equal(entry.scriptFilename, join(APPS, 'busy.mjs'))
    const file = join(APPS, 'busy.mjs')
    assert.deepEqual(frames(entry), [
      { fn: 'spin', file, line: lineOf('busy.mjs', '@spin-line') },
      { fn: 'compute', file, line: lineOf('busy.mjs', '@compute-line') },
      { fn: 'default', file, line: lineOf('busy.mjs', '@handler-line') }
    ], entry.lines.join('\n'))
  })

  test('a request is traced once, however long it runs', async () => {
    const { entries } = await slowRequest(fpm, fpm.port, wwwSlow, 'busy.mjs', 'ms=2500&t=once')
    assert.equal(entries.length, 1)
    // several checks (every 333 ms) saw it running past the timeout
    assert.equal(fpm.logs.filter(slowLine('/busy.mjs?ms=2500&t=once')).length, 1)
  })

  test('request_slowlog_trace_depth: at most that many frames (php\'s default 20; 3 in the other pool)', async () => {
    const [deep, shallow] = await Promise.all([
      slowRequest(fpm, fpm.port, wwwSlow, 'deep.mjs', 'levels=30&ms=2500&t=deep'),
      slowRequest(fpm, fpm.port2, shallowSlow, 'deep.mjs', 'levels=30&ms=2500&t=shallow')
    ])
    const file = join(APPS, 'deep.mjs')
    const spinLine = lineOf('deep.mjs', '@spin-line')
    const recurseLine = lineOf('deep.mjs', '@recurse-line')
    for (const [result, depth, pool] of [[deep, 20, 'www'], [shallow, 3, 'shallow']] as const) {
      assert.equal(result.res.status, 200)
      assert.equal(result.res.body, 'deep done true')
      assert.equal(result.entries.length, 1)
      const entry = result.entries[0] as Entry
      assert.equal(HEADER.exec(entry.header)?.[1], pool)
      const expected = Array.from({ length: depth }, (_, i) => ({ fn: 'recurse', file, line: i === 0 ? spinLine : recurseLine }))
      assert.deepEqual(frames(entry), expected, entry.lines.join('\n'))
    }
  })

  test('a handler awaiting a timer: a line says so (with the thread\'s Timeout), the request completes normally', async () => {
    const { res, entries } = await slowRequest(fpm, fpm.port, wwwSlow, 'sleepy.mjs', 'ms=2500&t=sleepy')
    assert.deepEqual({ status: res.status, body: res.body }, { status: 200, body: 'sleepy done' })
    assert.ok(res.ms >= 2500 && res.ms < 5000, `the request took ${res.ms} ms`)
    assert.equal(entries.length, 1)
    const entry = entries[0] as Entry
    assert.equal(entry.scriptFilename, join(APPS, 'sleepy.mjs'))
    assert.equal(entry.lines.length, 1, entry.lines.join('\n'))
    assert.match(entry.lines[0] as string, /^\+\+\+ no JavaScript of the request on the stack: it awaits I\/O or a timer \(active resources of the thread: .*\bTimeout\b.*\)$/)
  })

  test("a thread blocked in a system call: php's `+++ dump failed`, the reason in the log, the request completes", async () => {
    const { res, warning, entries } = await slowRequest(fpm, fpm.port, wwwSlow, 'blocked.mjs', 's=2.5&t=blocked')
    assert.deepEqual({ status: res.status, body: res.body }, { status: 200, body: 'blocked done' })
    assert.equal(entries.length, 1)
    assert.deepEqual(entries[0]?.lines, ['+++ dump failed'])
    const thread = warning.thread as number
    assert.ok(fpm.logs.some((l) => l.level === WARN && l.msg.startsWith(`slowlog: no stack for thread ${thread}: `)))
    // the thread is not left with a pending pause: its next slow request is traced with its stack
    const again = await Promise.all([
      slowRequest(fpm, fpm.port, wwwSlow, 'busy.mjs', 'ms=2000&t=after-blocked-1'),
      slowRequest(fpm, fpm.port, wwwSlow, 'busy.mjs', 'ms=2000&t=after-blocked-2')
    ])
    assert.ok(again.some((r) => r.warning.thread === thread), 'one of them ran on the thread that was blocked')
    for (const r of again) {
      assert.equal(r.res.body, 'busy done true')
      const names = parseEntries(readFileSync(wwwSlow, 'utf8'))
        .filter((e) => HEADER.exec(e.header)?.[2] === String(r.warning.thread) && e.scriptFilename === join(APPS, 'busy.mjs'))
        .at(-1)
      assert.deepEqual(names === undefined ? [] : frames(names).map((f) => f.fn), ['spin', 'compute', 'default'])
    }
  })

  test("quick requests are not logged; one warning per entry; the status page's `slow requests` counts the entries", async () => {
    const quick = await Promise.all(Array.from({ length: 10 }, async () => await get(fpm.port, 'quick.mjs', 't=quick')))
    assert.ok(quick.every((r) => r.status === 200 && r.body === 'quick'))
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(fpm.logs.filter(slowLine('/quick.mjs?t=quick')).length, 0)
    const warnings = fpm.logs.filter((l) => l.level === WARN && / executing too slow /.test(l.msg))
    const entries = parseEntries(readFileSync(wwwSlow, 'utf8') + readFileSync(shallowSlow, 'utf8'))
    assert.ok(warnings.length > 0)
    assert.equal(entries.length, warnings.length)
    assert.ok(entries.every((e) => e.scriptFilename !== join(APPS, 'quick.mjs')))
    for (const [port, file] of [[fpm.port, wwwSlow], [fpm.port2, shallowSlow]] as const) {
      const status = JSON.parse((await request(port, '/status?json')).body.toString()) as Record<string, unknown>
      assert.equal(status['slow requests'], parseEntries(readFileSync(file, 'utf8')).length, file)
    }
  })
})

describe('slowlog file', () => {
  test("that cannot be created stops the start with php's message", async () => {
    const dir = tempDir()
    const conf = join(dir, 'fpm.conf')
    writeFileSync(conf, `[www]\nlisten = 127.0.0.1:${await freePort()}\npm = static\npm.max_children = 1\nroot = ${APPS}\nslowlog = ${dir}/missing/www.slow\nrequest_slowlog_timeout = 1s\n`)
    const r = await runCli(['-y', conf, '--no-supervisor'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, new RegExp(`\\[pool www\\] Unable to create or open slowlog\\(${dir.replaceAll('.', '\\.')}/missing/www\\.slow\\): ENOENT`))
    assert.match(r.stderr, /FPM initialization failed/)
  })
})
