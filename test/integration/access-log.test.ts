// The access log (php's access.log, php-fpm.md §6) with the real server and real FastCGI requests:
// php's default line; a format with most specifiers checked against the request that made it;
// the responses node-fpm makes itself (404, 504); access.suppress_path; two pools, two files;
// lines written on SIGTERM and SIGQUIT; SIGUSR1 reopening the files (logrotate), supervised and not.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FcgiConnection, buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { CLI, NODE, REPO, freePort, render, startFpm, tempDir } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/access-apps')
const PAGE = join(APPS, 'page.mjs')
const skipPosix = process.platform === 'win32' ? 'POSIX signals' : false

interface Req {
  uri: string
  script?: string
  method?: string
  headers?: Array<[string, string]>
  body?: string
}

async function send (address: number | string, r: Req): Promise<{ status: number, headers: Array<[string, string]>, body: string }> {
  const body = r.body === undefined ? null : Buffer.from(r.body)
  const params = buildCgiParams({
    uri: r.uri,
    method: r.method,
    scriptFilename: r.script ?? PAGE,
    headers: r.headers,
    bodyLength: body === null ? undefined : body.length
  })
  const res = await fcgiRequest(typeof address === 'number' ? `127.0.0.1:${address}` : address, { params, body }, { timeoutMs: 20_000, connectTimeoutMs: 5000 })
  return { status: res.status, headers: res.headers, body: res.body.toString() }
}

/** The file's lines once it has at least `count` of them (the writes are asynchronous). */
async function lines (path: string, count: number, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'latin1') : ''
    const all = text === '' ? [] : text.replace(/\n$/, '').split('\n')
    if (all.length >= count) return all
    if (Date.now() > deadline) throw new Error(`${path}: ${all.length} lines after ${timeoutMs} ms, expected ${count}:\n${text}`)
    await sleep(20)
  }
}

/** Stops the server with `signal` and waits for its exit, keeping its directory (handle.stop removes it). */
async function kill (fpm: FpmHandle, signal: NodeJS.Signals): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => fpm.child.once('exit', (code) => { resolve(code) }))
  fpm.child.kill(signal)
  return await exited
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** php's default %t: 21/Nov/2026:09:07:36 +0000, as epoch ms. */
function parseClf (t: string): number {
  const m = /^(\d\d)\/([A-Z][a-z]{2})\/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(t)
  assert.ok(m !== null, t)
  const [, d, mon, y, hh, mm, ss, sign, oh, om] = m
  const offsetMin = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om))
  return Date.UTC(Number(y), MONTHS.indexOf(mon ?? ''), Number(d), Number(hh), Number(mm), Number(ss)) - offsetMin * 60_000
}

function config (pools: string): string {
  return `[global]
log_level = notice

${pools}`
}

describe('access log', { skip: skipPosix }, () => {
  describe('one server, three pools (a: every specifier; b: the default format, suppress paths, a ping page; c: a unix socket, request_terminate_timeout)', () => {
    let fpm: FpmHandle
    let logA: string
    let logB: string
    let logC: string
    const FORMAT = '%m|%r|%q|%Q|%s|%f|%{micro}d|%d|%{milli}d|%l|%{HTTP_X_FOO}e|%{NOPE}e|%{Content-Type}o|%{X-Thread}o|%{X-Missing}o|' +
      '%n|%P|%p|%u|%R|%{%Y-%m-%dT%H:%M:%S%z}t|%T|%%|%C|%{user}C|%{system}C|%M|%{kilo}M|%{mega}M'

    before(async () => {
      fpm = await startFpm(config(`[a]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = ${APPS}
access.log = a.access.log
access.format = "${FORMAT.replaceAll('"', '\\"')}"

[b]
listen = 127.0.0.1:{{PORT2}}
pm = static
pm.max_children = 1
root = ${APPS}
request.queue_max = 512
ping.path = /ping
access.log = {{DIR}}/b.access.log
access.suppress_path[] = /health
access.suppress_path[] = /ping

[c]
listen = {{DIR}}/c.sock
pm = static
pm.max_children = 1
root = ${APPS}
request_terminate_timeout = 1s
access.log = c.access.log
access.format = "%R %m %r %s %{micro}d"
`), { args: ['--no-supervisor'] })
      logA = join(fpm.dir, 'a.access.log')
      logB = join(fpm.dir, 'b.access.log')
      logC = join(fpm.dir, 'c.access.log')
    })
    after(async () => { await fpm?.stop() })

    test('the files are created 0600 at start-up (a relative path is taken from the prefix)', () => {
      for (const path of [logA, logB, logC]) assert.equal(statSync(path).mode & 0o777, 0o600)
    })

    test("php's default format: '%R - %u %t \"%m %r\" %s'", async () => {
      const before = Date.now()
      const res = await send(fpm.port2, { uri: '/page.mjs?x=1' })
      assert.equal(res.status, 200)
      const [line] = await lines(logB, 1)
      const m = /^127\.0\.0\.1 - {2}(\S+ [+-]\d{4}) "GET \/page\.mjs" 200$/.exec(line ?? '')
      assert.ok(m !== null, line)
      const t = parseClf(m[1] ?? '')
      assert.ok(t >= Math.floor(before / 1000) * 1000 && t <= Date.now(), `${t} not within the request`)
      assert.deepEqual(await lines(logA, 0), [], 'pool b wrote nothing to pool a')
    })

    test('every specifier, against the request that made the line', async () => {
      const body = 'a'.repeat(1234)
      const started = Date.now()
      const res = await send(fpm.port, {
        uri: '/page.mjs?status=201&ms=60&cpuMs=150&retainMb=24',
        method: 'POST',
        headers: [['X-Foo', 'bar baz'], ['Authorization', `Basic ${Buffer.from('alice:secret:x').toString('base64')}`], ['Content-Type', 'text/plain']],
        body
      })
      const ended = Date.now()
      assert.equal(res.status, 201)
      const thread = res.headers.find(([k]) => k === 'X-Thread')?.[1]
      const [line] = await lines(logA, 1)
      const f = (line ?? '').split('|')
      assert.equal(f.length, 29, line)
      const [m, r, q, Q, s, script, micro, sec, milli, l, xfoo, nope, ctype, xthread, missing, n, P, p, u, R, iso, T, pct, C, Cu, Cs, M, kM, mM] = f
      assert.deepEqual([m, r, q, Q, s, script], ['POST', '/page.mjs', 'status=201&ms=60&cpuMs=150&retainMb=24', '?', '201', PAGE])
      assert.deepEqual([l, xfoo, nope, ctype, xthread, missing], ['1234', 'bar baz', '-', 'text/plain; charset=utf-8', thread, '-'])
      assert.deepEqual([n, P, p, u, R, pct], ['a', String(fpm.child.pid), thread, 'alice', '127.0.0.1', '%'])
      // %d in its three units: one duration, at least the handler's 60 ms wait plus its 150 ms of CPU.
      const us = Number(micro)
      assert.ok(us >= 200_000 && us <= (ended - started + 50) * 1000, `duration ${us} µs`)
      assert.equal(sec, (us / 1e6).toFixed(3))
      assert.equal(milli, (us / 1000).toFixed(3))
      // %t: when the request arrived; %T: when the line was written, after it.
      const isoMatch = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)([+-]\d{4})$/.exec(iso ?? '')
      assert.ok(isoMatch !== null, iso)
      const t = parseClf(`${isoMatch[3]}/${MONTHS[Number(isoMatch[2]) - 1]}/${isoMatch[1]}:${isoMatch[4]}:${isoMatch[5]}:${isoMatch[6]} ${isoMatch[7]}`)
      const tEnd = parseClf(T ?? '')
      assert.ok(t >= Math.floor(started / 1000) * 1000 && t <= tEnd && tEnd <= ended, `%t ${t} %T ${tEnd}`)
      // %C: CPU time over the duration, in percent, printf %.2f: the 150 ms the handler burned.
      for (const v of [C, Cu, Cs]) assert.match(v ?? '', /^\d+\.\d\d$/)
      const cpuMs = Number(C) / 100 * us / 1000
      assert.ok(cpuMs >= 120, `%C ${C}% of ${us} µs = ${cpuMs} ms of CPU, the handler burned 150`)
      assert.ok(Math.abs(Number(C) - Number(Cu) - Number(Cs)) <= 0.011, `${C} = ${Cu} + ${Cs}`)
      // %M: the thread's heap in use, which holds the 24 MiB the handler kept.
      assert.ok(Number(M) >= 24 * 1024 * 1024, `%M ${M}`)
      assert.equal(kM, String(Math.floor(Number(M) / 1024)))
      assert.equal(mM, String(Math.floor(Number(M) / 1048576)))
    })

    test('responses node-fpm makes itself are logged: 404 (unknown script), 504 (request_terminate_timeout, on a unix socket: %R is -)', async () => {
      const known = (await lines(logA, 0)).length
      const missing = join(APPS, 'missing.mjs')
      assert.equal((await send(fpm.port, { uri: '/missing.mjs', script: missing })).status, 404)
      const [l404] = (await lines(logA, known + 1)).slice(known)
      const f404 = (l404 ?? '').split('|')
      // %f is the script asked for (php logs its path_translated); %p 0: no thread ran it.
      assert.deepEqual([f404[0], f404[1], f404[4], f404[5], f404[12], f404[17], f404[23], f404[26]],
        ['GET', '/missing.mjs', '404', missing, 'text/plain; charset=UTF-8', '0', '0.00', '0'])

      const started = Date.now()
      assert.equal((await send(join(fpm.dir, 'c.sock'), { uri: '/page.mjs?ms=30000' })).status, 504)
      const [l504] = await lines(logC, 1)
      const m = /^- GET \/page\.mjs 504 (\d+)$/.exec(l504 ?? '')
      assert.ok(m !== null, l504)
      // Written at the 504, not when the handler ends.
      const us = Number(m[1])
      assert.ok(us >= 900_000 && us <= (Date.now() - started + 50) * 1000, `504 after ${us} µs`)
    })

    test('access.suppress_path: only a 2xx GET/HEAD without query or body, whose %r is exactly the path (the ping page too)', async () => {
      const known = (await lines(logB, 0)).length
      const cases: Array<[Req, number]> = [
        [{ uri: '/health' }, 200],
        [{ uri: '/health', method: 'HEAD' }, 200],
        [{ uri: '/health', headers: [['X-Status', '204']] }, 204],
        [{ uri: '/ping' }, 200],
        [{ uri: '/ping?full' }, 200],
        [{ uri: '/health?full' }, 200],
        [{ uri: '/health', headers: [['X-Status', '503']] }, 503],
        [{ uri: '/health', method: 'POST', body: 'x' }, 200],
        [{ uri: '/health', method: 'OPTIONS' }, 200],
        [{ uri: '/health/' }, 200],
        [{ uri: '/Health' }, 200]
      ]
      // One at a time: the lines come in request order.
      for (const [req, status] of cases) assert.equal((await send(fpm.port2, req)).status, status)
      // A last request that is logged: once it is there, every line before it is too.
      await send(fpm.port2, { uri: '/last' })
      const written = (await lines(logB, known + 8)).slice(known)
      assert.deepEqual(written.map((l) => l.replace(/^.* "/, '"')), [
        '"GET /ping" 200', // the ping page, with a query (%r has none)
        '"GET /health" 200', // with a query
        '"GET /health" 503',
        '"POST /health" 200',
        '"OPTIONS /health" 200',
        '"GET /health/" 200',
        '"GET /Health" 200',
        '"GET /last" 200'
      ])
    })

    test('many requests at once: one line each, none lost or mixed', async () => {
      const known = (await lines(logB, 0)).length
      const conn = await FcgiConnection.connect(`127.0.0.1:${fpm.port2}`)
      try {
        const all = await Promise.all(Array.from({ length: 200 }, async (_, i) => await conn.request({
          params: buildCgiParams({ uri: `/page.mjs?i=${i}`, scriptFilename: PAGE })
        })))
        assert.ok(all.every((r) => r.status === 200))
      } finally {
        await conn.close()
      }
      const written = (await lines(logB, known + 200)).slice(known)
      assert.equal(written.length, 200)
      for (const l of written) assert.match(l, /^127\.0\.0\.1 - {2}\S+ [+-]\d{4} "GET \/page\.mjs" 200$/)
    })
  })

  describe('shutdown writes every line', () => {
    const pool = `[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = ${APPS}
access.log = {{DIR}}/access.log
access.format = "%r%Q%q %s"
`
    for (const signal of ['SIGQUIT', 'SIGTERM'] as const) {
      test(`${signal}: the lines of the requests that end during the shutdown are in the file when the process has exited`, async () => {
        const fpm = await startFpm(config(pool), { args: ['--no-supervisor'] })
        try {
          const path = join(fpm.dir, 'access.log')
          const quick = await Promise.all(Array.from({ length: 50 }, async (_, i) => await send(fpm.port, { uri: `/page.mjs?i=${i}` })))
          assert.ok(quick.every((r) => r.status === 200))
          // A request still running when the signal comes.
          const mark = join(fpm.dir, 'running')
          const running = send(fpm.port, { uri: `/page.mjs?ms=700&mark=${encodeURIComponent(mark)}` }).catch((err: Error) => err)
          while (!existsSync(mark)) await sleep(10)
          assert.equal(await kill(fpm, signal), 0)
          const outcome = await running
          const written = readFileSync(path, 'latin1').replace(/\n$/, '').split('\n')
          assert.equal(written.length, 51, written.join('\n'))
          assert.equal(written.filter((l) => /^\/page\.mjs\?i=\d+ 200$/.test(l)).length, 50)
          const last = written.find((l) => l.startsWith('/page.mjs?ms=700&'))
          if (signal === 'SIGQUIT') {
            // Graceful: the request finished, with its own status.
            assert.equal((outcome as { status?: number }).status, 200)
            assert.match(last ?? '', / 200$/)
          } else {
            // Fast: its thread was stopped under it (502), or its connection closed first (499).
            assert.match(last ?? '', / (499|5\d\d)$/)
          }
        } finally {
          await fpm.stop()
        }
      })
    }
  })

  describe('SIGUSR1 reopens the log files (logrotate)', () => {
    const pool = `[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 1
root = ${APPS}
access.log = {{DIR}}/access.log
access.format = "%r%Q%q %s"
`
    for (const mode of ['supervised', '--no-supervisor'] as const) {
      test(`${mode}: after a rename and SIGUSR1, new lines go to a new file at the path`, async () => {
        const fpm = await startFpm(config(pool), { args: mode === 'supervised' ? [] : ['--no-supervisor'] })
        try {
          const path = join(fpm.dir, 'access.log')
          await send(fpm.port, { uri: '/page.mjs?n=1' })
          assert.deepEqual(await lines(path, 1), ['/page.mjs?n=1 200'])
          renameSync(path, `${path}.1`)
          // Still the open file: the renamed one.
          await send(fpm.port, { uri: '/page.mjs?n=2' })
          assert.deepEqual(await lines(`${path}.1`, 2), ['/page.mjs?n=1 200', '/page.mjs?n=2 200'])
          assert.equal(existsSync(path), false)
          // The supervisor forwards it to the server process; unsupervised, the server gets it itself.
          fpm.child.kill('SIGUSR1')
          await fpm.waitForLog((l) => l.msg === 'access log file re-opened')
          assert.equal(existsSync(path), true)
          assert.equal(statSync(path).mode & 0o777, 0o600)
          await send(fpm.port, { uri: '/page.mjs?n=3' })
          assert.deepEqual(await lines(path, 1), ['/page.mjs?n=3 200'])
          assert.deepEqual(await lines(`${path}.1`, 2), ['/page.mjs?n=1 200', '/page.mjs?n=2 200'])
          // Node's default for SIGUSR1 (start the inspector) did not happen.
          assert.doesNotMatch(fpm.rawStderr(), /Debugger listening/)
          assert.equal(fpm.child.exitCode, null)
        } finally {
          await fpm.stop()
        }
      })
    }

    test('the error log file is reopened too, by the supervisor and by the server process', async () => {
      const dir = tempDir()
      try {
        const port = await freePort()
        const conf = join(dir, 'fpm.conf')
        writeFileSync(conf, render(config(pool).replace('log_level = notice', `log_level = notice\nerror_log = ${dir}/error.log`), { dir, port, port2: 0 }))
        const child = spawn(NODE, [CLI, '-y', conf], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
        let stderr = ''
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
        try {
          const errorLog = join(dir, 'error.log')
          await lines(errorLog, 1)
          const deadline = Date.now() + 15_000
          while (!readFileSync(errorLog, 'utf8').includes('ready to handle connections')) {
            assert.ok(Date.now() < deadline, readFileSync(errorLog, 'utf8'))
            await sleep(20)
          }
          renameSync(errorLog, `${errorLog}.1`)
          renameSync(join(dir, 'access.log'), join(dir, 'access.log.1'))
          child.kill('SIGUSR1')
          const reopened = await lines(errorLog, 2)
          const msgs = reopened.map((l) => (JSON.parse(l) as { msg: string }).msg)
          // The server process's notices (php's words), in the new file.
          assert.ok(msgs.includes('error log file re-opened') && msgs.includes('access log file re-opened'), msgs.join('\n'))
          await send(port, { uri: '/page.mjs' })
          assert.deepEqual(await lines(join(dir, 'access.log'), 1), ['/page.mjs 200'])
          child.kill('SIGTERM')
          assert.equal(await exited, 0)
          // Both processes' last lines went to the new error log.
          const after = readFileSync(errorLog, 'utf8')
          assert.match(after, /exiting, bye-bye!/)
          assert.doesNotMatch(readFileSync(`${errorLog}.1`, 'utf8'), /re-opened|bye-bye/)
          assert.equal(stderr, '')
        } finally {
          child.kill('SIGKILL')
          await exited
        }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })

  test('an access.log that cannot be opened fails the start-up, as in php', async () => {
    const dir = tempDir()
    try {
      const conf = join(dir, 'fpm.conf')
      writeFileSync(conf, render(config(`[www]
listen = 127.0.0.1:{{PORT}}
root = ${APPS}
pm = static
pm.max_children = 1
access.log = {{DIR}}/no/such/dir/access.log
`), { dir, port: await freePort(), port2: 0 }))
      const child = spawn(NODE, [CLI, '-y', conf, '--no-supervisor'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => { resolve(c) }))
      assert.equal(code, 78, stderr)
      assert.match(stderr, /\[pool www\] failed to open access log \(.*no\/such\/dir\/access\.log\): ENOENT/)
      assert.match(stderr, /FPM initialization failed/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
