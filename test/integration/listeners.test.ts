// The listeners of the real server (php's fpm_sockets.c behaviour): TCP on IPv4 and IPv6, unix
// sockets (listen.mode, a stale socket file replaced, a live one refused), one listener and one
// set of threads per pool, listen.allowed_clients, and a clear failure when the address is taken.
// Each case starts the node-fpm CLI from a config template and talks FastCGI to it.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import type { ClientAddress } from '../../src/client/address.ts'
import {
  FCGI_KEEP_CONN, RecordType, Role, buildBeginRequest, buildStreamEnd, encodeParams, frameChunks
} from '../../src/fastcgi/index.ts'
import { REPO, freePort, render, runCli, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/protocol-apps')

function pool (name: string, listen: string, extra = ''): string {
  return `[${name}]
listen = ${listen}
pm = static
pm.max_children = 2
root = {{ROOT}}
env[POOL] = $pool
${extra}
`
}

function config (...pools: string[]): string {
  return `[global]\nlog_level = notice\n\n${pools.join('\n')}`
}

interface Who { pool: string, threadId: number }

async function whoami (address: string | ClientAddress, query = ''): Promise<Who> {
  const res = await fcgiRequest(address, { params: buildCgiParams({ uri: `/whoami.mjs${query}`, documentRoot: APPS }) }, { timeoutMs: 10_000 })
  assert.equal(res.status, 200, res.body.toString())
  return JSON.parse(res.body.toString()) as Who
}

/** A whole FastCGI request for /whoami.mjs as records. */
function rawRequest (): Uint8Array[] {
  const params = encodeParams(Object.entries(buildCgiParams({ uri: '/whoami.mjs', documentRoot: APPS })))
  return [
    buildBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN),
    ...frameChunks(RecordType.PARAMS, 1, params),
    buildStreamEnd(RecordType.PARAMS, 1),
    buildStreamEnd(RecordType.STDIN, 1)
  ]
}

/** Connects (optionally from `localAddress`), sends a request, and reports what came back before the close. */
async function tryRequest (opts: net.NetConnectOpts): Promise<{ connected: boolean, bytes: number, localAddress: string }> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(opts)
    let bytes = 0
    let connected = false
    let localAddress = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('the server neither answered nor closed the connection in 10 s')) }, 10_000)
    socket.on('connect', () => {
      connected = true
      localAddress = socket.localAddress ?? ''
      for (const part of rawRequest()) socket.write(part)
    })
    socket.on('data', (d: Buffer) => { bytes += d.length })
    socket.on('error', () => {}) // ECONNRESET: the server dropped us
    socket.on('close', () => { clearTimeout(timer); resolve({ connected, bytes, localAddress }) })
  })
}

async function canListen (host: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => { resolve(false) })
    s.listen(0, host, () => { s.close(() => { resolve(true) }) })
  })
}

const hasIpv6 = await canListen('::1')
const isLinux = process.platform === 'linux' // the whole of 127/8 is local: a client can bind 127.0.0.2

const servers: FpmHandle[] = []
async function start (template: string, args: string[] = []): Promise<FpmHandle> {
  const fpm = await startFpm(template, { root: APPS, args })
  servers.push(fpm)
  return fpm
}

after(async () => {
  for (const s of servers) await s.stop('SIGKILL')
})

describe('TCP, unix socket and pools', () => {
  let fpm: FpmHandle
  let sock: string
  before(async () => {
    fpm = await start(config(
      pool('alpha', '127.0.0.1:{{PORT}}'),
      pool('beta', '127.0.0.1:{{PORT2}}'),
      pool('unix', '{{DIR}}/fpm.sock', 'listen.mode = 0600')
    ))
    sock = join(fpm.dir, 'fpm.sock')
  })

  test('TCP on 127.0.0.1', async () => {
    assert.equal((await whoami(`127.0.0.1:${fpm.port}`)).pool, 'alpha')
    const refused = await FcgiConnection.connect(`[::1]:${fpm.port}`).then(async (c) => { await c.close(); return false }, () => true)
    assert.ok(refused || !hasIpv6, 'a pool bound to 127.0.0.1 is not reachable over ::1')
  })

  test('a unix socket (absolute path) with listen.mode = 0600', async () => {
    const st = lstatSync(sock)
    assert.ok(st.isSocket(), `${sock} is a socket`)
    assert.equal((st.mode & 0o777).toString(8), '600')
    assert.equal((await whoami({ path: sock })).pool, 'unix')
  })

  test('two pools on two listeners, each served by its own threads', async () => {
    const ask = async (port: number): Promise<Who[]> => await Promise.all(Array.from({ length: 6 }, async () => await whoami(`127.0.0.1:${port}`, '?delay=100')))
    const [alpha, beta] = await Promise.all([ask(fpm.port), ask(fpm.port2)])
    assert.deepEqual(new Set(alpha.map((w) => w.pool)), new Set(['alpha']))
    assert.deepEqual(new Set(beta.map((w) => w.pool)), new Set(['beta']))
    const a = new Set(alpha.map((w) => w.threadId))
    const b = new Set(beta.map((w) => w.threadId))
    assert.ok(a.size >= 1 && a.size <= 2, `alpha used ${a.size} threads (pm.max_children = 2)`)
    assert.ok(b.size >= 1 && b.size <= 2, `beta used ${b.size} threads (pm.max_children = 2)`)
    assert.deepEqual([...a].filter((id) => b.has(id)), [], 'no thread serves both pools')
  })

  test('SIGTERM removes the unix socket file', async () => {
    assert.equal(await fpm.stop(), 0)
    assert.equal(existsSync(sock), false)
  })
})

describe('IPv6', { skip: hasIpv6 ? false : 'no IPv6 loopback on this machine' }, () => {
  test('TCP on [::1]:PORT', async () => {
    const fpm = await start(config(pool('six', '[::1]:{{PORT}}')))
    assert.equal((await whoami(`[::1]:${fpm.port}`)).pool, 'six')
    const refused = await FcgiConnection.connect(`127.0.0.1:${fpm.port}`).then(async (c) => { await c.close(); return false }, () => true)
    assert.ok(refused, 'a pool bound to [::1] is not reachable over 127.0.0.1')
  })
})

describe('unix socket files left behind', () => {
  let dir: string
  let conf: string
  let path: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-fpm-sock-'))
    path = join(dir, 'shared.sock')
    conf = config(pool('www', path))
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  test('a stale socket file (its server was killed) is replaced; a live one is refused', async () => {
    // One process (no supervisor): SIGKILL leaves the socket file with nobody behind it. (A
    // supervised server's child outlives a killed parent for a moment and still answers.)
    const first = await start(conf, ['--no-supervisor'])
    assert.equal((await whoami({ path })).pool, 'www')
    await first.stop('SIGKILL')
    assert.ok(lstatSync(path).isSocket(), 'SIGKILL left the socket file behind')
    await assert.rejects(FcgiConnection.connect({ path }), /ECONNREFUSED/, 'nobody listens on it')

    const second = await start(conf)
    assert.equal((await whoami({ path })).pool, 'www', 'the new server listens on the same path')

    const file = join(dir, 'third.conf')
    writeFileSync(file, render(conf, { dir, port: 0, port2: 0, root: APPS }))
    const third = await runCli(['-y', file], { timeoutMs: 20_000 })
    assert.notEqual(third.code, null, 'exits on its own')
    assert.notEqual(third.code, 0)
    assert.match(third.stderr, new RegExp(`Another FPM instance seems to already listen on ${path.replaceAll('.', '\\.')}`))
    assert.match(third.stderr, /FPM initialization failed/)
    assert.equal((await whoami({ path })).pool, 'www', 'the live server keeps its socket')
    await second.stop()
  })
})

describe('listen.allowed_clients', () => {
  let fpm: FpmHandle
  before(async () => {
    fpm = await start(config(
      pool('any', '{{PORT}}', 'listen.allowed_clients = 127.0.0.1'),
      pool('v4', '0.0.0.0:{{PORT2}}', 'listen.allowed_clients = 127.0.0.1')
    ))
  })

  test('an allowed client is served, on an all-addresses and a 0.0.0.0 listener', async () => {
    assert.equal((await whoami(`127.0.0.1:${fpm.port}`)).pool, 'any')
    assert.equal((await whoami(`127.0.0.1:${fpm.port2}`)).pool, 'v4')
  })

  const dropped = async (opts: net.NetConnectOpts, address: RegExp): Promise<void> => {
    const r = await tryRequest(opts)
    assert.ok(r.connected, 'the TCP connection was accepted...')
    assert.equal(r.bytes, 0, '...and closed without a response')
    const line = await fpm.waitForLog((l) => l.msg.startsWith('Connection disallowed') && address.test(l.msg))
    assert.match(line.msg, /^Connection disallowed: IP address '[0-9a-f:.]+' has been dropped\.$/)
  }

  test('a client from 127.0.0.2 is dropped', { skip: isLinux ? false : 'binding 127.0.0.2 needs Linux' }, async () => {
    await dropped({ host: '127.0.0.1', port: fpm.port, localAddress: '127.0.0.2' }, /'(::ffff:)?127\.0\.0\.2'/)
    await dropped({ host: '127.0.0.1', port: fpm.port2, localAddress: '127.0.0.2' }, /'127\.0\.0\.2'/)
  })

  test('a client over ::1 is dropped when only 127.0.0.1 is allowed', { skip: hasIpv6 ? false : 'no IPv6 loopback' }, async () => {
    await dropped({ host: '::1', port: fpm.port }, /'::1'/)
    assert.equal((await whoami(`127.0.0.1:${fpm.port}`)).pool, 'any', 'and the listener goes on serving')
  })
})

describe('address in use', () => {
  test('a second server on a taken port exits non-zero, naming the pool and the address', async () => {
    const fpm = await start(config(pool('first', '127.0.0.1:{{PORT}}')))
    const dir = mkdtempSync(join(tmpdir(), 'node-fpm-clash-'))
    try {
      const file = join(dir, 'clash.conf')
      writeFileSync(file, render(config(pool('clash', `127.0.0.1:${fpm.port}`)), { dir, port: fpm.port, port2: await freePort(), root: APPS }))
      const started = performance.now()
      const r = await runCli(['-y', file], { timeoutMs: 20_000 })
      assert.notEqual(r.code, null, `exits on its own (took ${Math.round(performance.now() - started)} ms)`)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, new RegExp(`\\[pool clash\\] unable to bind listening socket for address '127\\.0\\.0\\.1:${fpm.port}': Address already in use`))
      assert.match(r.stderr, /FPM initialization failed/)
      assert.equal((await whoami(`127.0.0.1:${fpm.port}`)).pool, 'first', 'the first server is unaffected')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
