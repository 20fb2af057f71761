// The slowlog's pieces that need no thread: how often it checks, php's entry format, where a
// trace is cut. The behaviour with real threads: test/integration/slowlog.test.ts.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { slowlogCheckEveryMs } from '../../../src/pool/slowlog.ts'
import { formatSlowlogEntry, frameAddress, frameLine, requestFrames, slowlogTime } from '../../../src/pool/slowlog-entry.ts'
import type { StackFrame } from '../../../src/pool/worker-backtrace.ts'

const frame = (functionName: string, url: string, line: number, functionLine = 1): StackFrame =>
  ({ functionName, url, line, column: 3, functionLine, functionColumn: 1 })

describe('slowlogCheckEveryMs', () => {
  it("is php's heartbeat: a third of the shorter of request_slowlog_timeout and request_terminate_timeout, at least 130 ms", () => {
    assert.equal(slowlogCheckEveryMs(1000, 0), 333)
    assert.equal(slowlogCheckEveryMs(5000, 3000), 1000)
    assert.equal(slowlogCheckEveryMs(5000, 30_000), 1666)
    assert.equal(slowlogCheckEveryMs(300, 0), 130)
    assert.equal(slowlogCheckEveryMs(1000, 200), 130)
  })
})

describe('slowlogTime', () => {
  it("is php's zlog time with its trailing space, local time, microseconds only at debug", () => {
    const at = new Date(2021, 5, 3, 7, 21, 46, 123).getTime()
    assert.equal(slowlogTime(at, false), '[03-Jun-2021 07:21:46] ')
    assert.equal(slowlogTime(at, true), '[03-Jun-2021 07:21:46.123000] ')
  })
})

describe('formatSlowlogEntry', () => {
  const at = new Date(2021, 5, 3, 7, 21, 46).getTime()
  const base = { atMs: at, poolName: 'www', threadId: 7, script: '/srv/app/index.mjs', micro: false }

  it("is php's entry: empty line, header with two spaces before [pool, script_filename, one line per frame", () => {
    const spin = frame('spin', 'file:///srv/app/lib.mjs', 12, 10)
    const handler = frame('', 'file:///srv/app/index.mjs', 5, 3)
    const text = formatSlowlogEntry({ ...base, trace: { kind: 'frames', frames: [spin, handler] } })
    assert.equal(text, [
      '',
      '[03-Jun-2021 07:21:46]  [pool www] pid 7',
      'script_filename = /srv/app/index.mjs',
      `[0x${frameAddress(spin)}] spin() /srv/app/lib.mjs:12`,
      `[0x${frameAddress(handler)}] <anonymous>() /srv/app/index.mjs:5`,
      ''
    ].join('\n'))
  })

  it('says the request awaits, with what keeps the thread alive, instead of an empty trace', () => {
    const text = formatSlowlogEntry({ ...base, trace: { kind: 'awaiting', resources: ['MessagePort', 'Timeout', 'MessagePort'] } })
    assert.equal(text.split('\n')[3], '+++ no JavaScript of the request on the stack: it awaits I/O or a timer (active resources of the thread: MessagePort (2), Timeout)')
    const unknown = formatSlowlogEntry({ ...base, trace: { kind: 'awaiting', resources: null } })
    assert.equal(unknown.split('\n')[3], '+++ no JavaScript of the request on the stack: it awaits I/O or a timer')
  })

  it("writes php's `+++ dump failed` when the stack could not be read", () => {
    assert.equal(formatSlowlogEntry({ ...base, trace: { kind: 'failed' } }).split('\n').slice(1).join('\n'),
      '[03-Jun-2021 07:21:46]  [pool www] pid 7\nscript_filename = /srv/app/index.mjs\n+++ dump failed\n')
  })
})

describe('frameLine', () => {
  it('keeps php\'s `[0x<16 hex>] name() file:line`; node\'s modules keep their URL, a script without one is `unknown`', () => {
    assert.match(frameLine(frame('readFileSync', 'node:fs', 441)), /^\[0x[0-9a-f]{16}\] readFileSync\(\) node:fs:441$/)
    assert.match(frameLine(frame('f', '', 2)), /^\[0x[0-9a-f]{16}\] f\(\) unknown:2$/)
    assert.match(frameLine(frame('g', 'file:///srv/a%20b.mjs?v=2', 9)), /^\[0x[0-9a-f]{16}\] g\(\) \/srv\/a b\.mjs:9$/)
  })

  it('the address identifies the function: the same wherever it executes, another for another function', () => {
    assert.equal(frameAddress(frame('spin', 'file:///a.mjs', 5, 3)), frameAddress(frame('spin', 'file:///a.mjs', 9, 3)))
    assert.notEqual(frameAddress(frame('spin', 'file:///a.mjs', 5, 3)), frameAddress(frame('spin', 'file:///b.mjs', 5, 3)))
    assert.notEqual(frameAddress(frame('spin', 'file:///a.mjs', 5, 3)), frameAddress(frame('spin', 'file:///a.mjs', 5, 20)))
  })
})

describe('requestFrames', () => {
  const isOwn = (url: string): boolean => url.startsWith('file:///fpm/src/') || url.startsWith('file:///fpm/node_modules/piscina/')
  const user = (name: string): StackFrame => frame(name, 'file:///srv/app.mjs', 1)
  const own = (name: string): StackFrame => frame(name, 'file:///fpm/src/worker/handler-context.ts', 1)
  const internal = (name: string): StackFrame => frame(name, 'node:internal/timers', 1)

  it("stops where node-fpm's code called the request's code (like php at the top-level script frame)", () => {
    const frames = [internal('pbkdf2Sync'), user('hash'), user('handler'), own('run'), own('runTask'), frame('onMessage', 'file:///fpm/node_modules/piscina/dist/worker.js', 1)]
    assert.deepEqual(requestFrames(frames, 20, isOwn)?.map((f) => f.functionName), ['pbkdf2Sync', 'hash', 'handler'])
  })

  it("keeps node-fpm's frames above the request's code (a callback of the request calling into it)", () => {
    assert.deepEqual(requestFrames([own('send'), user('handler'), own('run')], 20, isOwn)?.map((f) => f.functionName), ['send', 'handler'])
  })

  it('keeps at most `depth` frames, innermost first', () => {
    const frames = [user('a'), user('b'), user('c'), user('d'), own('run')]
    assert.deepEqual(requestFrames(frames, 2, isOwn)?.map((f) => f.functionName), ['a', 'b'])
  })

  it("is null when no frame is the request's code: the pause landed where the idle thread woke up", () => {
    assert.equal(requestFrames([internal('processTimers')], 20, isOwn), null)
    assert.equal(requestFrames([own('flushResults'), internal('processImmediate')], 20, isOwn), null)
  })
})
