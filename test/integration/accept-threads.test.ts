// pm.accept = threads (worker/thread-server.ts): each pool thread accepts on a descriptor of its own
// of the pool's socket and serves its connections with the server's own code. Real node-fpm
// processes, a real nginx in front (kept upstream connections and not), real FastCGI clients:
// responses and bodies through nginx; the status figures the threads count; a busy loop past
// request_terminate_timeout (the thread is terminated, its connection closes) and a hung handler
// (504 from the thread); pm.max_requests recycling without losing a request that comes on a new
// connection; a graceful stop that finishes the running request; the configurations refused.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import { REPO, runCli, startFpm, tempDir } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { findNginx, startNginx } from '../helpers/nginx.ts'
import { request, waitFor } from '../helpers/status-pages.ts'

const APPS = join(REPO, 'test/fixtures/apps')
const TIMEOUT_APPS = join(REPO, 'test/fixtures/timeout-apps')

const CONFIG = (extra = ''): string => `
[global]
error_log = stderr
log_level = notice

[www]
listen = {{DIR}}/www.sock
pm = static
pm.max_children = 2
pm.accept = threads
pm.status_path = /status
root = {{ROOT}}
${extra}
`

async function json (fpm: FpmHandle): Promise<Record<string, unknown>> {
  const res = await request(join(fpm.dir, 'www.sock'), '/status?json', { params: { SCRIPT_FILENAME: '/status', SCRIPT_NAME: '/status' } })
  assert.equal(res.status, 200)
  return JSON.parse(res.body.toString()) as Record<string, unknown>
}

/** The full status page as JSON. */
async function json2 (fpm: FpmHandle): Promise<{ processes?: Array<Record<string, unknown>> }> {
  const res = await request(join(fpm.dir, 'www.sock'), '/status?json&full', { params: { SCRIPT_FILENAME: '/status', SCRIPT_NAME: '/status' } })
  assert.equal(res.status, 200)
  return JSON.parse(res.body.toString()) as { processes?: Array<Record<string, unknown>> }
}

/** GET `uri` on a connection of its own; SCRIPT_FILENAME under `root`. */
async function get (fpm: FpmHandle, root: string, uri: string): Promise<{ status: number, body: string } | { closed: string }> {
  const conn = await FcgiConnection.connect(join(fpm.dir, 'www.sock'))
  try {
    const res = await conn.request({ params: buildCgiParams({ uri, documentRoot: root }) }, { keepConn: false, timeoutMs: 20_000 })
    return { status: res.status, body: res.body.toString() }
  } catch (err) {
    return { closed: (err as Error).message }
  } finally {
    await conn.close()
  }
}

describe('pm.accept = threads behind nginx', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG(), { root: APPS }) })
  after(async () => { await fpm.stop() })

  for (const keepConn of [false, true]) {
    test(`GET and a 1 MiB POST through nginx, ${keepConn ? 'kept upstream connections' : 'a connection per request'}; the threads count every request`, async (t) => {
      if (findNginx() === null) {
        if (process.env.CI !== undefined && process.env.CI !== '') assert.fail('nginx is not installed, and CI must run the nginx tests')
        t.skip('nginx not installed')
        return
      }
      const before = (await json(fpm))['accepted conn'] as number
      const nginx = await startNginx({ upstream: join(fpm.dir, 'www.sock'), keepConn, documentRoot: APPS })
      try {
        const gets = await Promise.all(Array.from({ length: 64 }, async () => await fetch(`${nginx.url}/hello.mjs`)))
        for (const res of gets) {
          assert.equal(res.status, 200)
          assert.equal(await res.text(), 'hello')
        }
        const body = randomBytes(1024 * 1024)
        const posted = await fetch(`${nginx.url}/echo.mjs`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
        assert.equal(posted.status, 200)
        assert.ok(Buffer.from(await posted.arrayBuffer()).equals(body), 'the body came back byte for byte')
      } finally {
        await nginx.stop()
      }
      const s = await json(fpm)
      // 64 GETs, the POST, and this status request
      assert.equal(s['accepted conn'], before + 64 + 1 + 1 + 0)
      assert.equal(s['total processes'], 2)
      assert.ok((s['max active processes'] as number) >= 1 && (s['max active processes'] as number) <= 2)
    })
  }
})

describe('pm.accept = threads: connections that arrive together', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG(), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('16 connections opened at once spread over both threads (the first thread awake does not take them all); the full view shows each idle thread\'s last request', async () => {
    const before = new Map(((await json2(fpm)).processes ?? []).map((p) => [p.pid, p.requests as number]))
    const conns = await Promise.all(Array.from({ length: 16 }, async () => await FcgiConnection.connect(join(fpm.dir, 'www.sock'))))
    try {
      const res = await Promise.all(conns.map(async (c) => await c.request({ params: buildCgiParams({ uri: '/hello.mjs', documentRoot: APPS }) }, { keepConn: true, timeoutMs: 10_000 })))
      for (const r of res) assert.equal(r.status, 200)
    } finally {
      await Promise.all(conns.map(async (c) => { await c.close() }))
    }
    const procs = (await json2(fpm)).processes ?? []
    const served = procs.map((p) => (p.requests as number) - (before.get(p.pid) ?? 0))
    // an idle thread shows the last request it ran (from the thread's shared counts and request texts)
    for (const p of procs) {
      assert.deepEqual([p.state, p['request method'], p['request uri'], p.script], ['Idle', 'GET', '/hello.mjs', join(APPS, 'hello.mjs')], JSON.stringify(p))
      assert.ok((p['request duration'] as number) > 0)
    }
    assert.equal(served.reduce((a, b) => a + b, 0), 16 + 1, JSON.stringify(served)) // and the status request
    // Without the balance one thread took 12 to 16 of them here; a share is 8.
    for (const n of served) assert.ok(n >= 3, `each thread took a part: ${JSON.stringify(served)}`)
  })
})

describe('pm.accept = threads: request_terminate_timeout', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG('request_terminate_timeout = 1s\nrequest_terminate_timeout_grace = 300ms'), { root: TIMEOUT_APPS }) })
  after(async () => { await fpm.stop() })

  test('a busy loop: its thread is terminated and its connection closes; a hung handler gets 504; the pool serves on', async () => {
    // Each thread loads the module first (a first run awaits its import).
    for (let i = 0; i < 4; i++) assert.deepEqual(await get(fpm, TIMEOUT_APPS, '/spin-if-asked.mjs'), { status: 200, body: 'loaded' })
    const startedMs = performance.now()
    const spun = await get(fpm, TIMEOUT_APPS, '/spin-if-asked.mjs?spin=1')
    assert.ok('closed' in spun, `the connection closed with its thread: ${JSON.stringify(spun)}`)
    assert.ok(performance.now() - startedMs >= 1000, 'not before request_terminate_timeout')
    const line = await fpm.waitForLog((l) => /execution timed out/.test(l.msg))
    assert.match(line.msg, new RegExp(`script '${join(TIMEOUT_APPS, 'spin-if-asked.mjs').replaceAll('/', '\\/')}' \\(request: "GET /spin-if-asked.mjs\\?spin=1"\\) execution timed out`))
    await fpm.waitForLog((l) => /exited on terminate\(\) \(request_terminate_timeout\)/.test(l.msg))

    const hung = await get(fpm, TIMEOUT_APPS, '/await-forever.mjs')
    assert.deepEqual('status' in hung ? hung.status : hung, 504)
    for (let i = 0; i < 4; i++) assert.deepEqual(await get(fpm, TIMEOUT_APPS, '/spin-if-asked.mjs'), { status: 200, body: 'loaded' })
    const s = await json(fpm)
    assert.equal(s['total processes'], 2, 'the terminated threads were replaced')
  })
})

describe('pm.accept = threads: a thread that dies', () => {
  const PM_APPS = join(REPO, 'test/fixtures/pm-apps')
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG(), { root: PM_APPS }) })
  after(async () => { await fpm.stop() })

  test('process.exit() in a handler: its connection closes, the death is logged, a new thread takes its place', async () => {
    const died = await get(fpm, PM_APPS, '/exit.mjs')
    assert.ok('closed' in died, JSON.stringify(died))
    await fpm.waitForLog((l) => /exited with code 3/.test(l.msg))
    for (let i = 0; i < 6; i++) assert.equal((await get(fpm, PM_APPS, '/quick.mjs') as { status: number }).status, 200)
    await waitFor(async () => (await json(fpm))['total processes'] === 2 ? true : undefined, 'two threads again')
  })
})

describe('pm.accept = threads: emergency restart', () => {
  const PM_APPS = join(REPO, 'test/fixtures/pm-apps')
  let fpm: FpmHandle
  before(async () => {
    // three threads: two die, the third is the one the restart replaces
    fpm = await startFpm(CONFIG().replace('[www]', 'emergency_restart_threshold = 2\nemergency_restart_interval = 10s\n\n[www]').replace('pm.max_children = 2', 'pm.max_children = 3'), { root: PM_APPS })
  })
  after(async () => { await fpm.stop() })

  test('two deaths within the interval: the other threads leave as in php-fpm\'s reload, new ones serve', { timeout: 30_000 }, async () => {
    await fpm.waitForLog((l) => /^3 initial threads ready/.test(l.msg)) // they boot a few at a time
    for (let i = 0; i < 2; i++) {
      const deaths = fpm.logs.filter((l) => /exited with code 3/.test(l.msg)).length
      assert.ok('closed' in await get(fpm, PM_APPS, '/exit.mjs'))
      await fpm.waitForLog(() => fpm.logs.filter((l) => /exited with code 3/.test(l.msg)).length > deaths)
    }
    await fpm.waitForLog((l) => /^failed threads threshold \(2 in 10 sec\) is reached/.test(l.msg))
    await fpm.waitForLog((l) => /retired after \d+ requests \(emergency restart\)/.test(l.msg))
    for (let i = 0; i < 4; i++) assert.equal((await get(fpm, PM_APPS, '/quick.mjs') as { status: number }).status, 200)
    await waitFor(async () => (await json(fpm))['total processes'] === 3 ? true : undefined, 'three threads again')
  })
})

describe('pm.accept = threads: pm.max_requests', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG('pm.max_requests = 5').replace('log_level = notice', 'log_level = debug'), { root: APPS }) })
  after(async () => { await fpm.stop() })

  test('threads recycle after 5 requests or a few more; no request on a new connection is lost meanwhile', async () => {
    const results = []
    for (let round = 0; round < 10; round++) {
      results.push(...await Promise.all(Array.from({ length: 4 }, async () => await get(fpm, APPS, '/hello.mjs'))))
    }
    for (const r of results) assert.deepEqual(r, { status: 200, body: 'hello' })
    // A thread stops accepting at its 5th request; connections it had accepted by then are still served.
    const retired = await waitFor(async () => {
      const lines = fpm.logs.filter((l) => /retired after \d+ requests \(pm.max_requests\)/.test(l.msg))
      return lines.length >= 4 ? lines : undefined
    }, 'threads recycled', 10_000)
    for (const line of retired) assert.ok((line.requests as number) >= 5, line.msg)
    const s = await waitFor(async () => { const j = await json(fpm); return j['total processes'] === 2 ? j : undefined }, 'two threads again')
    assert.ok((s['accepted conn'] as number) >= 40)
    // Under the supervisor the two initial threads listen on descriptors the supervisor sent the
    // server process, one each; the threads that replace them on copies (worker/socket-copy.ts).
    const sent = fpm.logs.filter((l) => /accepts on the supervisor's descriptor \d+$/.test(l.msg)).map((l) => l.msg)
    assert.equal(sent.length, 2, sent.join('; '))
    assert.notEqual(sent[0], sent[1], 'a descriptor each')
    const copies = fpm.logs.filter((l) => /accepts on a copy of the listening socket$/.test(l.msg))
    assert.ok(copies.length >= 4, `${copies.length} replacement threads on copies`)
  })
})

describe('pm.accept = threads: pm.heap_soft_limit and the full status view', () => {
  const STATUS_APPS = join(REPO, 'test/fixtures/status-apps')
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG('pm.heap_soft_limit = 24M'), { root: STATUS_APPS }) })
  after(async () => { await fpm.stop() })

  test('a thread that holds more heap than the soft limit after a request is replaced; the full view shows a running request', async () => {
    const held = get(fpm, STATUS_APPS, '/cost.mjs?holdMiB=32&wait=400')
    const running = await waitFor(async () => {
      const res = await request(join(fpm.dir, 'www.sock'), '/status?json&full', { params: { SCRIPT_FILENAME: '/status', SCRIPT_NAME: '/status' } })
      const procs = (JSON.parse(res.body.toString()) as { processes: Array<Record<string, unknown>> }).processes
      return procs.find((p) => p.state === 'Running')
    }, 'a thread running the request')
    assert.equal(running['request uri'], '/cost.mjs?holdMiB=32&wait=400')
    assert.equal(running['request method'], 'GET')
    assert.deepEqual(await held, { status: 200, body: String(32 * 131072) })
    const line = await fpm.waitForLog((l) => /over pm.heap_soft_limit/.test(l.msg))
    await fpm.waitForLog((l) => l.thread === line.thread && /retired after \d+ requests \(pm.heap_soft_limit\)/.test(l.msg))
    for (let i = 0; i < 4; i++) assert.deepEqual(await get(fpm, STATUS_APPS, '/cost.mjs'), { status: 200, body: '0' })
  })
})

describe('pm.accept = threads: slowlog and access log', () => {
  const SLOW_APPS = join(REPO, 'test/fixtures/slowlog-apps')
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(CONFIG('slowlog = {{DIR}}/www.slow\nrequest_slowlog_timeout = 1s\naccess.log = {{DIR}}/access.log\naccess.format = "%m %r%Q%q %s"'), { root: SLOW_APPS, args: ['--no-supervisor'] })
  })
  after(async () => { await fpm.stop() })

  test('a busy loop is traced with its JavaScript stack; each thread writes the access log, and SIGUSR1 reopens it there', async () => {
    assert.deepEqual(await get(fpm, SLOW_APPS, '/busy.mjs?ms=2000&t=threads'), { status: 200, body: 'busy done true' })
    const warning = await fpm.waitForLog((l) => /executing too slow/.test(l.msg))
    assert.match(warning.msg, /\(request: "GET \/busy\.mjs\?ms=2000&t=threads"\) executing too slow/)
    await fpm.waitForLog((l) => l.msg === `finished trace of thread ${String(warning.thread)}`)
    const slow = readFileSync(join(fpm.dir, 'www.slow'), 'utf8')
    assert.match(slow, /spin\(\) .*busy\.mjs:\d+/, slow)

    const accessLog = join(fpm.dir, 'access.log')
    await waitFor(async () => readFileSync(accessLog, 'utf8').includes('GET /busy.mjs?ms=2000&t=threads 200') ? true : undefined, 'the access log line')
    renameSync(accessLog, `${accessLog}.1`)
    fpm.child.kill('SIGUSR1')
    await fpm.waitForLog((l) => l.msg === 'access log files re-opened' || /re-opened/.test(l.msg))
    await waitFor(async () => existsSync(accessLog) ? true : undefined, 'the access log reopened by the threads')
    for (let i = 0; i < 4; i++) assert.equal((await get(fpm, SLOW_APPS, '/quick.mjs?n=' + String(i)) as { status: number }).status, 200)
    await waitFor(async () => (readFileSync(accessLog, 'utf8').match(/GET \/quick\.mjs/g) ?? []).length === 4 ? true : undefined, 'four lines in the new file')
  })
})

describe('pm.accept = threads: graceful stop', () => {
  test('SIGQUIT: the running request finishes with its response, then the server exits 0', async () => {
    const root = tempDir()
    writeFileSync(join(root, 'slow.mjs'), "export default async () => { await new Promise((r) => setTimeout(r, 500)); return new Response('done') }\n")
    const fpm = await startFpm(CONFIG(), { root })
    try {
      const pending = get(fpm, root, '/slow.mjs')
      await new Promise((resolve) => setTimeout(resolve, 150))
      fpm.child.kill('SIGQUIT')
      assert.deepEqual(await pending, { status: 200, body: 'done' })
      const code = await new Promise<number | null>((resolve) => { fpm.child.once('exit', (c) => { resolve(c) }) })
      assert.equal(code, 0)
    } finally {
      await fpm.stop()
    }
  })
})

describe('pm.accept = threads on TCP', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await startFpm(`
[global]
error_log = stderr

[tcp]
listen = 127.0.0.1:{{PORT}}
listen.allowed_clients = 127.0.0.2
pm = static
pm.max_children = 2
pm.accept = threads
ping.path = /ping
root = {{ROOT}}
`, { root: APPS })
  })
  after(async () => { await fpm.stop() })

  test('the threads accept on a TCP socket too; listen.allowed_clients drops others there; ping is answered by the thread', async () => {
    // 127.0.0.1 is not allowed: the connection is accepted, then closed without a response
    const denied = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`)
      .then(async (conn) => await conn.request({ params: buildCgiParams({ uri: '/hello.mjs', documentRoot: APPS }) }, { keepConn: false, timeoutMs: 5000 }).finally(async () => { await conn.close() }))
      .then(() => 'answered', (err: Error) => err.message)
    assert.match(denied, /closed|reset|ECONNRESET/)
    await fpm.waitForLog((l) => l.msg === "Connection disallowed: IP address '127.0.0.1' has been dropped.")
    // from 127.0.0.2 (allowed): served, ping included
    const conn = await FcgiConnection.connect({ host: '127.0.0.1', port: fpm.port, localAddress: '127.0.0.2' } as never)
    try {
      const res = await conn.request({ params: buildCgiParams({ uri: '/hello.mjs', documentRoot: APPS }) }, { keepConn: true, timeoutMs: 5000 })
      assert.deepEqual([res.status, res.body.toString()], [200, 'hello'])
      const ping = await conn.request({ params: { ...buildCgiParams({ uri: '/ping', documentRoot: APPS }), SCRIPT_NAME: '/ping' } }, { keepConn: true, timeoutMs: 5000 })
      assert.deepEqual([ping.status, ping.body.toString()], [200, 'pong'])
    } finally {
      await conn.close()
    }
  })
})

describe('pm.accept = threads: configurations refused', () => {
  test('-t: pm = dynamic, and an unknown value', async () => {
    const dir = tempDir()
    const conf = join(dir, 'bad.conf')
    writeFileSync(conf, `[www]\nlisten = ${dir}/x.sock\npm = dynamic\npm.max_children = 4\npm.min_spare_servers = 1\npm.max_spare_servers = 2\npm.accept = threads\n`)
    const dynamic = await runCli(['-t', '-y', conf])
    assert.notEqual(dynamic.code, 0)
    assert.match(dynamic.stderr, /\[pool www\] pm\.accept = threads needs pm = static/)
    writeFileSync(conf, `[www]\nlisten = ${dir}/x.sock\npm = static\npm.max_children = 4\npm.accept = processes\n`)
    const unknown = await runCli(['-t', '-y', conf])
    assert.notEqual(unknown.code, 0)
    assert.match(unknown.stderr, /pm\.accept.*invalid value \(main or threads\)/)
  })
})
