// The status page of a real server (status/pages.ts), asked over real FastCGI connections: every
// format (text, JSON, XML, HTML, OpenMetrics; short and full) parsed strictly and checked against
// what the pool really did (requests sent, threads held busy, requests queued); answered while
// every thread is busy; HEAD; which requests are status requests (SCRIPT_NAME, exactly, with a
// script path) and which go on to their script; pm.status_listen.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import {
  POOL_LABELS, PROCESS_KEYS, headOf, num, parseOpenMetrics, parseText, parseXml, request, waitFor
} from '../helpers/status-pages.ts'

const APPS = join(REPO, 'test/fixtures/status-apps')
const NO_CACHE = 'Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\nCache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n'
const TEXT_HEAD = NO_CACHE + 'Content-type: text/plain;charset=UTF-8\r\n\r\n'

const CONFIG = `
[global]
error_log = stderr

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
request.queue_max = 10
root = {{ROOT}}
pm.status_path = /status
pm.status_listen = 127.0.0.1:{{PORT2}}
ping.path = /ping
`

type Json = Record<string, unknown> & { processes?: Array<Record<string, unknown>> }

const root = { documentRoot: APPS }

async function json (port: number, query = 'json'): Promise<Json> {
  const res = await request(port, `/status?${query}`)
  assert.equal(res.status, 200)
  return JSON.parse(res.body.toString()) as Json
}

/** `/gate.mjs?gate=FILE&n=N`: held on its thread until FILE exists. */
function gated (gate: string, n: number): string {
  return `/gate.mjs?gate=${encodeURIComponent(gate)}&n=${n}`
}

/** Waits until no thread runs a request, asking on the pm.status_listen address (not counted). */
async function idle (fpm: FpmHandle): Promise<void> {
  await waitFor(async () => (await json(fpm.port2))['active processes'] === 0 ? true : undefined, 'every thread idle')
}

/** "03/Jun/2021:07:21:46 +0100" -> epoch seconds. */
function textTimeToEpoch (text: string): number {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text)
  assert.ok(m !== null, `not php's time format: ${text}`)
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[2]!)
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 3600 + Number(m[9]) * 60)
  return utc - offset
}

describe('status page: formats and figures on a fresh pool', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS, args: ['--no-supervisor'] }) })
  after(async () => { await fpm.stop() })

  test('text, json, xml, html and openmetrics, short and full, with the requests the pool really served', async () => {
    const startedSec = Math.floor(Date.now() / 1000)
    for (let i = 0; i < 3; i++) assert.equal((await request(fpm.port, '/quick.mjs', root)).status, 200)
    // A thread is idle again once its task has settled, which may come just after the response.
    await idle(fpm)

    // text: php's layout, and the status request counts itself (3 + 1)
    const textRes = await request(fpm.port, '/status')
    assert.equal(textRes.status, 200)
    assert.equal(headOf(textRes), TEXT_HEAD)
    const text = parseText(textRes.body.toString())
    assert.equal(text.processes.length, 0)
    assert.equal(text.pool.get('pool'), 'www')
    assert.equal(text.pool.get('process manager'), 'static')
    const startEpoch = textTimeToEpoch(text.pool.get('start time') ?? '')
    assert.ok(startEpoch <= startedSec && startedSec - startEpoch < 60, `start time ${startEpoch} vs ${startedSec}`)
    assert.ok(num(text.pool, 'start since') >= 0 && num(text.pool, 'start since') < 60)
    assert.deepEqual(
      ['accepted conn', 'listen queue', 'max listen queue', 'listen queue len', 'idle processes', 'active processes', 'total processes',
        'max active processes', 'max children reached', 'slow requests'].map((l) => num(text.pool, l)),
      [4, 0, 0, 10, 2, 0, 2, 1, 0, 0])

    // json: one object, php's keys in php's order; start time as epoch seconds, the same instant
    const jsonRes = await request(fpm.port, '/status?json')
    assert.equal(headOf(jsonRes), NO_CACHE + 'Content-Type: application/json\r\n\r\n')
    const j = JSON.parse(jsonRes.body.toString()) as Json
    assert.deepEqual(Object.keys(j), POOL_LABELS)
    assert.equal(j['start time'], startEpoch)
    assert.equal(j['accepted conn'], 5)
    assert.equal(j['total processes'], 2)
    assert.equal(j['listen queue len'], 10)

    // xml: well-formed, php's element names in order
    const xmlRes = await request(fpm.port, '/status?xml')
    assert.equal(headOf(xmlRes), NO_CACHE + 'Content-type: text/xml;charset=UTF-8\r\n\r\n')
    const xml = parseXml(xmlRes.body.toString())
    assert.equal(xml.name, 'status')
    assert.deepEqual(xml.children.map((c) => c.name), POOL_LABELS.map((l) => l.replaceAll(' ', '-')))
    const xmlValue = (name: string): string | undefined => xml.children.find((c) => c.name === name)?.text
    assert.equal(xmlValue('accepted-conn'), '6')
    assert.equal(xmlValue('start-time'), String(startEpoch))
    assert.equal(xmlValue('pool'), 'www')

    // html: an XHTML document with one table of the pool's fields
    const htmlRes = await request(fpm.port, '/status?html')
    assert.equal(headOf(htmlRes), NO_CACHE + 'Content-type: text/html;charset=UTF-8\r\n\r\n')
    const html = parseXml(htmlRes.body.toString())
    const body = html.children.find((c) => c.name === 'body')
    assert.equal(body?.children.length, 1)
    const rows = body?.children[0]?.children ?? []
    assert.deepEqual(rows.map((r) => r.children[0]?.text), POOL_LABELS)
    assert.equal(rows.find((r) => r.children[0]?.text === 'accepted conn')?.children[1]?.text, '7')
    assert.equal(rows.find((r) => r.children[0]?.text === 'start time')?.children[1]?.text, text.pool.get('start time'))

    // openmetrics: HELP, TYPE and a value per metric, "# EOF"; full is the same page
    const omRes = await request(fpm.port, '/status?openmetrics')
    assert.equal(headOf(omRes), NO_CACHE + 'Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\r\n')
    const om = parseOpenMetrics(omRes.body.toString())
    assert.deepEqual([...om.keys()], ['phpfpm_up', 'phpfpm_start_since', 'phpfpm_accepted_connections', 'phpfpm_listen_queue',
      'phpfpm_max_listen_queue', 'phpfpm_listen_queue_length', 'phpfpm_idle_processes', 'phpfpm_active_processes',
      'phpfpm_total_processes', 'phpfpm_max_active_processes', 'phpfpm_max_children_reached', 'phpfpm_slow_requests'])
    assert.equal(om.get('phpfpm_up')?.value, 1)
    assert.equal(om.get('phpfpm_accepted_connections')?.value, 8)
    assert.equal(om.get('phpfpm_listen_queue_length')?.value, 10)
    assert.equal(om.get('phpfpm_total_processes')?.value, 2)
    assert.match(om.get('phpfpm_up')?.help ?? '', /^Could pool www using a static PM on PHP-FPM be reached\?$/)
    const omFull = (await request(fpm.port, '/status?openmetrics&full')).body.toString()
    assert.equal(omFull, omRes.body.toString().replace('phpfpm_accepted_connections 8', 'phpfpm_accepted_connections 9'))

    // json full: one entry per thread, with the requests each served
    const full = await json(fpm.port, 'json&full')
    assert.equal(full['accepted conn'], 10)
    const procs = full.processes ?? []
    assert.equal(procs.length, 2)
    for (const p of procs) {
      assert.deepEqual(Object.keys(p), PROCESS_KEYS)
      assert.equal(p.state, 'Idle')
      assert.equal(typeof p.pid, 'number')
      assert.ok((p['start time'] as number) >= startEpoch)
    }
    assert.notEqual(procs[0]?.pid, procs[1]?.pid)
    assert.equal(procs.reduce((n, p) => n + (p.requests as number), 0), 3)
    for (const p of procs.filter((p) => (p.requests as number) > 0)) {
      assert.equal(p['request method'], 'GET')
      assert.equal(p['request uri'], '/quick.mjs')
      assert.equal(p.script, join(APPS, 'quick.mjs'))
      assert.equal(p['content length'], 0)
      assert.equal(p.user, '-')
      assert.ok((p['request duration'] as number) > 0, 'the last request\'s duration, in µs')
    }
    for (const p of procs.filter((p) => p.requests === 0)) assert.deepEqual([p['request method'], p['request uri'], p.script], ['-', '-', '-'])

    // text full, xml full, html full: the same threads
    const textFull = parseText((await request(fpm.port, '/status?full')).body.toString())
    assert.deepEqual(textFull.processes.map((p) => num(p, 'pid')).sort(), procs.map((p) => p.pid as number).sort())
    // CPU over wall time of each thread's last request (measured: the pool has a status page); none yet: 0.00
    for (const p of textFull.processes) {
      const cpu = p.get('last request cpu') ?? ''
      if (num(p, 'requests') === 0) assert.equal(cpu, '0.00')
      else assert.match(cpu, /^\d+\.\d\d$/)
    }
    const xmlFull = parseXml((await request(fpm.port, '/status?xml&full')).body.toString())
    const xmlProcs = xmlFull.children.find((c) => c.name === 'processes')?.children ?? []
    assert.deepEqual(xmlProcs.map((p) => p.name), ['process', 'process'])
    assert.deepEqual(xmlProcs[0]?.children.map((c) => c.name), PROCESS_KEYS.map((k) => k.replaceAll(' ', '-')))
    const htmlFull = parseXml((await request(fpm.port, '/status?full&html')).body.toString())
    const tables = htmlFull.children.find((c) => c.name === 'body')?.children ?? []
    assert.equal(tables.length, 2)
    assert.deepEqual(tables[1]?.children[0]?.children.map((th) => th.text), PROCESS_KEYS)
    assert.equal(tables[1]?.children.length, 3, 'a header row and one row per thread')

    // the figures the tests saw: 3 scripts + 11 status requests
    assert.equal((await json(fpm.port))['accepted conn'], 14)
  })

  test('which format: html > xml > json > openmetrics > text, values ignored', async () => {
    const contentType = async (query: string): Promise<string> => /Content-type: ([^\r]*)/i.exec(headOf(await request(fpm.port, `/status?${query}`)))?.[1] ?? ''
    assert.equal(await contentType('json&html'), 'text/html;charset=UTF-8')
    assert.equal(await contentType('json&xml'), 'text/xml;charset=UTF-8')
    assert.equal(await contentType('openmetrics&json=0'), 'application/json')
    assert.equal(await contentType('unknown=1'), 'text/plain;charset=UTF-8')
  })

  test('HEAD: the headers of GET, no body', async () => {
    for (const [query, head] of [['', TEXT_HEAD], ['json&full', NO_CACHE + 'Content-Type: application/json\r\n\r\n']] as const) {
      const res = await request(fpm.port, `/status?${query}`, { method: 'HEAD' })
      assert.equal(res.status, 200)
      assert.equal(headOf(res), head)
      assert.equal(res.body.length, 0)
    }
  })

  test('a status request is SCRIPT_NAME = pm.status_path exactly, with a script path; the rest goes on to its script', async () => {
    // SCRIPT_NAME decides, not REQUEST_URI nor the script file
    const bySn = await request(fpm.port, '/whatever', { ...root, params: { SCRIPT_NAME: '/status', SCRIPT_FILENAME: join(APPS, 'quick.mjs') } })
    assert.equal(headOf(bySn), TEXT_HEAD)
    assert.equal(parseText(bySn.body.toString()).pool.get('pool'), 'www')
    const byUri = await request(fpm.port, '/quick.mjs', { ...root, params: { REQUEST_URI: '/status' } })
    assert.match(byUri.body.toString(), /^\d+$/, 'the handler ran')
    // the query string is not part of the path
    assert.equal(headOf(await request(fpm.port, '/status?a=b&c')), TEXT_HEAD)
    // case, trailing slash, a prefix: not the status page (no such script: 404)
    for (const uri of ['/STATUS', '/status/', '/statusx', '/stat']) {
      const res = await request(fpm.port, uri, root)
      assert.equal(res.status, 404, uri)
      assert.equal(res.body.toString(), 'File not found.\n', uri)
    }
    // without SCRIPT_FILENAME: php's 404
    const noScript = await request(fpm.port, '/status', { noScriptFilename: true })
    assert.equal(noScript.status, 404)
    assert.equal(noScript.body.toString(), 'File not found.\n')
  })
})

describe('status page while every thread is busy', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS, args: ['--no-supervisor'] }) })
  after(async () => { await fpm.stop() })

  test('answered at once, with the running requests, the queue and the maxima', async () => {
    const gate = join(fpm.dir, 'gate')
    const auth = 'Basic ' + Buffer.from('alice:secret').toString('base64')
    // Two requests hold both threads; three wait in the pool's queue.
    const first = request(fpm.port, gated(gate, 1), { ...root, method: 'POST', body: 'hello', headers: [['Authorization', auth]] })
    await waitFor(async () => (await json(fpm.port2))['active processes'] === 1 ? true : undefined, 'the first request to run')
    const rest = [2, 3, 4, 5].map((n) => request(fpm.port, gated(gate, n), root))
    const all = [first, ...rest]
    try {
      // polled on the pm.status_listen address, which does not count in "accepted conn"
      await waitFor(async () => (await json(fpm.port2))['listen queue'] === 3 ? true : undefined, 'three queued requests')

      const res = await request(fpm.port, '/status?json&full')
      assert.equal(res.status, 200)
      const s = JSON.parse(res.body.toString()) as Json
      assert.equal(s['accepted conn'], 6, '5 requests + this one')
      assert.deepEqual([s['idle processes'], s['active processes'], s['total processes'], s['max active processes']], [0, 2, 2, 2])
      assert.deepEqual([s['listen queue'], s['max listen queue'], s['listen queue len']], [3, 3, 10])
      const procs = s.processes ?? []
      assert.deepEqual(procs.map((p) => p.state), ['Running', 'Running'])
      for (const p of procs) {
        assert.equal(p.requests, 1)
        assert.match(p['request uri'] as string, /^\/gate\.mjs\?gate=.*&n=[12]$/)
        assert.equal(p.script, join(APPS, 'gate.mjs'))
        assert.ok((p['request duration'] as number) > 0)
        assert.equal(p['last request memory'], 0)
      }
      const withBody = procs.find((p) => (p['request uri'] as string).endsWith('&n=1'))
      assert.deepEqual([withBody?.['request method'], withBody?.['content length'], withBody?.user], ['POST', 5, 'alice'])

      // text and ping too, and HEAD
      assert.equal(num(parseText((await request(fpm.port, '/status')).body.toString()).pool, 'active processes'), 2)
      assert.equal((await request(fpm.port, '/ping')).body.toString(), 'pong')
      assert.equal((await request(fpm.port, '/status', { method: 'HEAD' })).body.length, 0)
    } finally {
      writeFileSync(gate, '')
    }
    for (const r of await Promise.all(all)) assert.equal(r.status, 200)
    await idle(fpm)

    const done = await json(fpm.port, 'json&full')
    assert.equal(done['accepted conn'], 10, '5 requests + 4 pages + this one')
    assert.deepEqual([done['idle processes'], done['active processes'], done['listen queue'], done['max listen queue'], done['max active processes']],
      [2, 0, 0, 3, 2])
    const procs = done.processes ?? []
    assert.deepEqual(procs.map((p) => p.state), ['Idle', 'Idle'])
    assert.equal(procs.reduce((n, p) => n + (p.requests as number), 0), 5)
    // each thread shows the last request it ran; the queued ones (3 to 5) ran after the first two
    for (const p of procs) assert.match(p['request uri'] as string, /^\/gate\.mjs\?gate=.*&n=[1-5]$/)
    assert.ok(procs.some((p) => /&n=[3-5]$/.test(p['request uri'] as string)), JSON.stringify(procs))
  })
})

describe('status page: what the last request cost its thread', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG.replace('pm.max_children = 2', 'pm.max_children = 1'), { root: APPS, args: ['--no-supervisor'] }) })
  after(async () => { await fpm.stop() })

  /** The one thread, once idle, as the full JSON page shows it. */
  async function thread (): Promise<Record<string, unknown>> {
    await idle(fpm)
    const procs = (await json(fpm.port2, 'json&full')).processes ?? []
    assert.equal(procs.length, 1)
    return procs[0]!
  }

  test('last request cpu: CPU time over wall time, in %; last request memory: the heap it held', async () => {
    // Measured from the first full view on: a request before it has no figures
    assert.equal((await request(fpm.port, '/cost.mjs?spin=150', root)).status, 200)
    const unmeasured = await thread()
    assert.deepEqual([unmeasured['request uri'], unmeasured['last request cpu'], unmeasured['last request memory']], ['/cost.mjs?spin=150', 0, 0])

    // 150 ms of busy loop: the thread's CPU all along (php's figure counts user + system time)
    assert.equal((await request(fpm.port, '/cost.mjs?spin=150', root)).status, 200)
    const busy = await thread()
    assert.equal(busy['request uri'], '/cost.mjs?spin=150')
    assert.ok((busy['last request cpu'] as number) >= 50 && (busy['last request cpu'] as number) <= 110, JSON.stringify(busy))

    // 150 ms on a timer: almost no CPU
    assert.equal((await request(fpm.port, '/cost.mjs?wait=150', root)).status, 200)
    const waiting = await thread()
    assert.equal(waiting['request uri'], '/cost.mjs?wait=150')
    assert.ok((waiting['last request cpu'] as number) < 25, JSON.stringify(waiting))

    // 32 MiB held on the heap at the request's end: at least that much, and it was not before
    const before = (await thread())['last request memory'] as number
    assert.ok(before > 0 && before < 32 * 1024 * 1024, `${before}`)
    assert.equal((await request(fpm.port, '/cost.mjs?holdMiB=32', root)).body.toString(), String(32 * 131072))
    const holding = await thread()
    assert.ok((holding['last request memory'] as number) >= 32 * 1024 * 1024, JSON.stringify(holding))
    assert.equal((await request(fpm.port, '/cost.mjs?holdMiB=0', root)).body.toString(), '0')
  })
})

describe('pm.status_listen', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS, args: ['--no-supervisor'] }) })
  after(async () => { await fpm.stop() })

  test('serves the pool\'s status page only, and its requests are not counted', async () => {
    assert.equal((await request(fpm.port, '/quick.mjs', root)).status, 200)
    const a = await request(fpm.port2, '/status?json')
    assert.equal(headOf(a), NO_CACHE + 'Content-Type: application/json\r\n\r\n')
    const first = JSON.parse(a.body.toString()) as Json
    assert.equal(first.pool, 'www')
    assert.equal(first['accepted conn'], 1)
    // php: no ping there (issue #14037); nor any script
    for (const uri of ['/ping', '/quick.mjs', '/']) {
      const res = await request(fpm.port2, uri, root)
      assert.equal(res.status, 404, uri)
      assert.equal(res.body.toString(), 'File not found.\n')
    }
    assert.equal(parseText((await request(fpm.port2, '/status?full')).body.toString()).processes.length, 2)
    assert.equal((await json(fpm.port2))['accepted conn'], 1, 'nothing on the status address counted, nothing ran')
  })

  test('without pm.status_path: the page is at / there, and the pool\'s own listener has no status page', async () => {
    const other = await startFpm(`
[global]
error_log = stderr

[front]
listen = 127.0.0.1:{{PORT}}
pm = ondemand
pm.max_children = 1
handler = {{ROOT}}/quick.mjs
pm.status_listen = 127.0.0.1:{{PORT2}}
`, { root: APPS, args: ['--no-supervisor'] })
    try {
      const page = await request(other.port2, '/')
      assert.equal(headOf(page), TEXT_HEAD)
      const text = parseText(page.body.toString())
      assert.deepEqual([text.pool.get('pool'), text.pool.get('process manager'), num(text.pool, 'total processes')], ['front', 'ondemand', 0])
      assert.equal((await request(other.port2, '/status')).status, 404)
      // the pool's listener: `/` runs the handler
      assert.match((await request(other.port, '/')).body.toString(), /^\d+$/)
      assert.equal(num(parseText((await request(other.port2, '/')).body.toString()).pool, 'accepted conn'), 1)
    } finally {
      await other.stop()
    }
  })
})

describe('pm.status_listen under the supervisor', () => {
  test('the supervisor binds the status address too, and the server process listens on it', async () => {
    const fpm = await startFpm(CONFIG.replace('error_log = stderr', 'error_log = stderr\nlog_level = debug'), { root: APPS })
    try {
      const passed = new RegExp(`^using the supervisor's socket fd=\\d+, "127\\.0\\.0\\.1:${fpm.port2}"$`)
      await fpm.waitForLog((l) => passed.test(l.msg))
      const s = await json(fpm.port2)
      assert.equal(s.pool, 'www')
      assert.equal(s['total processes'], 2)
    } finally {
      await fpm.stop()
    }
  })
})

describe('status pages in the access log', () => {
  test('the pool\'s own status and ping requests are logged, those on pm.status_listen are not (php\'s hidden pool has no access log)', async () => {
    const fpm = await startFpm(CONFIG + 'access.log = {{DIR}}/access.log\naccess.format = "%m %r%Q%q %s"\n', { root: APPS, args: ['--no-supervisor'] })
    const file = join(fpm.dir, 'access.log')
    let lines: string[] = []
    try {
      await request(fpm.port, '/status?json')
      await request(fpm.port, '/ping')
      await request(fpm.port2, '/status?xml')
      await request(fpm.port2, '/other')
      await request(fpm.port, '/quick.mjs', root)
      // the quick request is the last one sent: once it is in the file, the others would be too
      lines = await waitFor(async () => {
        const text = existsSync(file) ? readFileSync(file, 'latin1') : ''
        return text.includes('/quick.mjs') ? text.trim().split('\n') : undefined
      }, 'the access log lines')
    } finally {
      await fpm.stop()
    }
    assert.deepEqual(lines, ['GET /status?json 200', 'GET /ping 200', 'GET /quick.mjs 200'])
  })
})
