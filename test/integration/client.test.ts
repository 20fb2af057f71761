// The FastCGI client (src/client), `node-fpm request` and the load generator against a real
// FastCGI server: Debian's php-fpm, started by bench/php-fpm.ts (these tests are skipped when
// php-fpm is not installed). Behaviours php-fpm cannot show (multiplexing, a server closing early,
// STDOUT split into tiny records) are checked against small raw-socket servers.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { findPhpFpm, startPhpFpm } from '../../bench/php-fpm.ts'
import type { PhpFpmHandle } from '../../bench/php-fpm.ts'
import { runLoad } from '../../src/bench/load-generator.ts'
import { FcgiConnection, buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { ProtocolStatus, RecordType } from '../../src/fastcgi/constants.ts'
import { RecordParser } from '../../src/fastcgi/record-parser.ts'
import { buildEndRequest } from '../../src/fastcgi/records.ts'
import { frameInto, framedLength } from '../../src/fastcgi/record-writer.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NODE = process.execPath
const CLI = path.join(ROOT, 'test/helpers/run-request-cli.ts')
const noPhp = findPhpFpm() === null

function pattern (n: number): Buffer {
  const buf = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) buf[i] = (i * 31 + (i >>> 8)) & 0xff
  return buf
}

async function runCli (args: string[], input?: Buffer): Promise<{ code: number | null, stdout: Buffer, stderr: string }> {
  const child = spawn(NODE, [CLI, 'request', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => err.push(c))
  child.stdin.end(input)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }
}

describe('client against php-fpm', { skip: noPhp ? 'php-fpm is not installed' : false }, () => {
  let php: PhpFpmHandle
  let tmp: string
  const params = (uri: string, more: Parameters<typeof buildCgiParams>[0] | object = {}): Record<string, string> =>
    buildCgiParams({ uri, documentRoot: php.scriptDir, ...more })

  before(async () => {
    php = await startPhpFpm({ workers: 2 })
    tmp = mkdtempSync(path.join(os.tmpdir(), 'node-fpm-client-test-'))
  })
  after(async () => {
    await php?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('GET hello.php', async () => {
    const res = await fcgiRequest(php.address, { params: params('/hello.php') })
    assert.equal(res.status, 200)
    assert.equal(res.statusText, 'OK')
    assert.equal(res.body.toString(), 'Hello, World!')
    assert.ok(res.headers.some(([n, v]) => n.toLowerCase() === 'content-type' && v.startsWith('text/html')))
    assert.equal(res.appStatus, 0)
    assert.equal(res.protocolStatus, ProtocolStatus.REQUEST_COMPLETE)
    assert.ok(res.raw.toString('latin1').endsWith('\r\n\r\nHello, World!'))
  })

  test('a missing script: Status 404 and FCGI_STDERR', async () => {
    const res = await fcgiRequest(php.address, { params: params('/no-such-script.php') })
    assert.equal(res.status, 404)
    assert.equal(res.statusText, 'Not Found')
    assert.match(res.stderr, /Primary script unknown/)
    assert.ok(!res.headers.some(([n]) => n.toLowerCase() === 'status'))
  })

  test('POST 1 MiB to echo.php comes back exactly (Uint8Array body)', async () => {
    const body = pattern(1 << 20)
    const res = await fcgiRequest(php.address, {
      params: params('/echo.php', { method: 'POST', bodyLength: body.length, headers: [['Content-Type', 'application/octet-stream']] }),
      body
    })
    assert.equal(res.status, 200)
    assert.equal(res.body.length, body.length)
    assert.ok(res.body.equals(body))
  })

  test('POST 3 MiB streamed from an AsyncIterable in odd-sized chunks', async () => {
    const body = pattern(3 * 1024 * 1024 + 5)
    let pulled = 0
    async function * chunks (): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < body.length; off += 100_003) {
        const chunk = body.subarray(off, Math.min(body.length, off + 100_003))
        pulled += chunk.length
        yield chunk
      }
    }
    const res = await fcgiRequest(php.address, {
      params: params('/echo.php', { method: 'POST', bodyLength: body.length, headers: [['Content-Type', 'application/octet-stream']] }),
      body: chunks()
    })
    assert.equal(pulled, body.length)
    assert.ok(res.body.equals(body))
  })

  test('keep-conn: 3 sequential requests on one connection', async () => {
    const conn = await FcgiConnection.connect(php.address)
    try {
      const ids: number[] = []
      for (const uri of ['/hello.php', '/json.php', '/hello.php']) {
        const res = await conn.request({ params: params(uri) })
        assert.equal(res.status, 200)
        assert.equal(conn.closed, false)
        ids.push(res.requestId)
        if (uri === '/json.php') assert.equal((JSON.parse(res.body.toString()) as { total: number }).total, 17)
      }
      assert.deepEqual(ids, [1, 2, 3])
    } finally {
      await conn.close()
    }
    assert.equal(conn.closed, true)
  })

  test('without keep-conn the server closes the connection after the response', async () => {
    const conn = await FcgiConnection.connect(php.address)
    const res = await conn.request({ params: params('/hello.php') }, { keepConn: false })
    assert.equal(res.body.toString(), 'Hello, World!')
    await assert.rejects(conn.request({ params: params('/hello.php') }), { code: 'FPM_ERR_CLIENT' })
    await conn.close()
  })

  test('getValues: php-fpm does not multiplex', async () => {
    const conn = await FcgiConnection.connect(php.address)
    try {
      const values = await conn.getValues(['FCGI_MPXS_CONNS', 'FCGI_MAX_CONNS', 'FCGI_MAX_REQS'])
      assert.equal(values.FCGI_MPXS_CONNS, '0')
    } finally {
      await conn.close()
    }
  })

  test('onStdout streams the response: body empty, head parsed', async () => {
    const chunks: Buffer[] = []
    const res = await fcgiRequest(php.address, { params: params('/big.php') }, { onStdout: (c) => chunks.push(c) })
    assert.equal(res.status, 200)
    assert.equal(res.body.length, 0)
    const all = Buffer.concat(chunks)
    assert.ok(all.subarray(res.raw.length).equals(Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n'.repeat(1024))))
  })

  test('connection refused / no socket: FPM_ERR_CLIENT', async () => {
    await assert.rejects(fcgiRequest(path.join(tmp, 'none.sock'), { params: params('/hello.php') }),
      (err: Error & { code?: string }) => err.code === 'FPM_ERR_CLIENT' && /cannot connect to .*none\.sock/.test(err.message))
  })

  test('node-fpm request: GET with --include, exit 0', async () => {
    const r = await runCli([php.address, '/hello.php', '--root', php.scriptDir, '-i'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout.toString(), /^HTTP\/1\.1 200 OK\r\nContent-type: text\/html; charset=UTF-8\r\n\r\nHello, World!$/)
  })

  test('node-fpm request: status >= 400 exits 1, body printed, FCGI_STDERR on stderr', async () => {
    const r = await runCli([php.address, '/missing.php', '--root', php.scriptDir])
    assert.equal(r.code, 1)
    assert.equal(r.stdout.toString(), 'File not found.\n')
    assert.match(r.stderr, /Primary script unknown/)
  })

  test('node-fpm request: -d @file streams the file; echoed byte for byte', async () => {
    const body = pattern(700_000)
    const file = path.join(tmp, 'body.bin')
    writeFileSync(file, body)
    const r = await runCli([php.address, '/ignored', '--script', path.join(php.scriptDir, 'echo.php'), '-d', `@${file}`,
      '-H', 'Content-Type: application/octet-stream'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stdout.equals(body))
  })

  test('node-fpm request: -d STRING is a form POST; --param overrides a computed param', async () => {
    const r = await runCli([php.address, '/elsewhere.php', '--root', php.scriptDir, '-d', 'a=1&b=é',
      '--param', `SCRIPT_FILENAME=${path.join(php.scriptDir, 'echo.php')}`])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.toString(), 'a=1&b=é')
  })

  test('node-fpm request: no server exits 2 with one line', async () => {
    const r = await runCli([path.join(tmp, 'nothing.sock'), '/'])
    assert.equal(r.code, 2)
    assert.equal(r.stdout.length, 0)
    assert.match(r.stderr, /^node-fpm request: cannot connect to .*nothing\.sock: .*ENOENT.*\n$/)
  })

  test('load generator: a short run against hello.php, every response checked', async () => {
    const r = await runLoad({ address: php.address, uri: '/hello.php', root: php.scriptDir, connections: 2, duration: 0.3, warmup: 0.1, expectBody: 'Hello, World!' })
    assert.ok(r.requests > 10, `only ${r.requests} requests`)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    assert.equal(r.connectionsServed, 2)
    assert.ok(r.latency.p50 > 0 && r.latency.p50 <= r.latency.p99 && r.latency.p99 <= r.latency.max)
    assert.ok(r.stdoutBytes > r.requests * 13)
  })

  test('load generator: new connection per request, POST echo checked', async () => {
    const r = await runLoad({ address: php.address, uri: '/echo.php', root: php.scriptDir, connections: 2, duration: 0.3, warmup: 0, keepConn: false, dataSize: 200_000, expectEcho: true })
    assert.ok(r.requests > 5)
    assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
    assert.equal(r.method, 'POST')
  })

  test('load generator: a wrong expectation fails the check request', async () => {
    await assert.rejects(runLoad({ address: php.address, uri: '/hello.php', root: php.scriptDir, duration: 0.1, expectBody: 'nope' }),
      /check request failed: body of 13 bytes differs/)
  })
})

// ---- raw-socket servers: what php-fpm does not do -------------------------------------------------

interface Received { type: number, id: number, content: Buffer }

/** A unix-socket server whose `onRecord` answers with raw bytes. */
async function rawServer (onRecord: (sock: net.Socket, r: Received) => void): Promise<{ address: string, close: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'node-fpm-raw-'))
  const address = path.join(dir, 's.sock')
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    const parser = new RecordParser({ onRecord: (type, id, content) => onRecord(sock, { type, id, content: Buffer.from(content) }) })
    sock.on('data', (c: Buffer) => parser.push(c))
  })
  await new Promise<void>((resolve) => server.listen(address, resolve))
  return {
    address,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

function stdout (id: number, data: string | Buffer): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
  const buf = Buffer.alloc(framedLength(bytes.length))
  frameInto(buf, 0, RecordType.STDOUT, id, bytes)
  return buf
}

function record (type: number, id: number, data: Buffer): Buffer {
  const buf = Buffer.alloc(framedLength(data.length))
  frameInto(buf, 0, type, id, data)
  return buf
}

describe('client against raw FastCGI servers', () => {
  test('multiplexed requests answered out of order, STDOUT in 1-byte records written 1 byte at a time', async () => {
    const pending = new Map<number, string>()
    const srv = await rawServer((sock, r) => {
      if (r.type === RecordType.PARAMS && r.content.length > 0) pending.set(r.id, r.content.toString('latin1'))
      if (r.type === RecordType.STDIN && r.content.length === 0 && pending.size === 2) {
        // Both requests are in: answer the later one first.
        for (const id of [...pending.keys()].reverse()) {
          const text = `Status: 201 Created\r\nX-Id: ${id}\r\n\r\nbody of ${id}`
          const bytes: Buffer[] = []
          for (const ch of text) bytes.push(stdout(id, ch))
          bytes.push(record(RecordType.STDERR, id, Buffer.from(`warn ${id}`)), buildEndRequest(id, 7, 0))
          const all = Buffer.concat(bytes)
          for (let i = 0; i < all.length; i++) sock.write(all.subarray(i, i + 1))
        }
      }
    })
    const conn = await FcgiConnection.connect(srv.address)
    try {
      const [a, b] = await Promise.all([
        conn.request({ params: { A: '1' } }),
        conn.request({ params: [['B', '2']] })
      ])
      assert.equal(a.requestId, 1)
      assert.equal(b.requestId, 2)
      for (const res of [a, b]) {
        assert.equal(res.status, 201)
        assert.equal(res.statusText, 'Created')
        assert.deepEqual(res.headers, [['X-Id', String(res.requestId)]])
        assert.equal(res.body.toString(), `body of ${res.requestId}`)
        assert.equal(res.stderr, `warn ${res.requestId}`)
        assert.equal(res.appStatus, 7)
      }
    } finally {
      await conn.close()
      await srv.close()
    }
  })

  test('load generator: what the warm-up saw (errors, a slow start) is not in the report', async () => {
    // 503 and 40 ms per response until 250 ms after the first request, then 200 at once: the warm-up
    // (600 ms) gets both, and the measure must report neither (the warm-up counts into the same
    // counters, which the measure's start resets).
    let firstAtMs = 0
    const srv = await rawServer((sock, r) => {
      if (r.type !== RecordType.STDIN || r.content.length > 0) return
      firstAtMs ||= performance.now()
      const early = performance.now() - firstAtMs < 250
      const answer = (): void => {
        sock.write(Buffer.concat([stdout(r.id, early ? 'Status: 503 Busy\r\n\r\nlater' : 'Content-Type: text/plain\r\n\r\nok'), buildEndRequest(r.id, 0, 0)]))
      }
      if (early) setTimeout(answer, 40)
      else answer()
    })
    try {
      const r = await runLoad({ address: srv.address, uri: '/', root: '/srv', connections: 2, warmup: 0.6, duration: 0.3, check: false, expectBody: 'ok' })
      assert.equal(r.errors.total, 0, JSON.stringify(r.errorSamples))
      assert.deepEqual(r.errorSamples, {})
      assert.ok(r.requests > 10, `${r.requests} requests`)
      assert.equal(r.connectionsServed, 2)
      assert.ok(r.latency.max < 40, `max latency ${r.latency.max} ms: a warm-up response was counted`)
      assert.equal(r.stdoutBytes % Buffer.byteLength('Content-Type: text/plain\r\n\r\nok'), 0)
    } finally {
      await srv.close()
    }
  })

  test('a server that closes before END_REQUEST: FPM_ERR_CLIENT with a clear message', async () => {
    const srv = await rawServer((sock, r) => {
      if (r.type === RecordType.STDIN && r.content.length === 0) {
        sock.write(stdout(r.id, 'Content-Type: text/plain\r\n\r\npartial'))
        sock.end()
      }
    })
    try {
      await assert.rejects(fcgiRequest(srv.address, { params: { X: 'y' } }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'FPM_ERR_CLIENT')
        assert.match(err.message, /connection closed by .* before the end of request 1 \(no END_REQUEST; 35 bytes of STDOUT received\)/)
        return true
      })
    } finally {
      await srv.close()
    }
  })

  test('a server that closes while a large body is being sent', async () => {
    const srv = await rawServer((sock) => { sock.destroy() })
    try {
      await assert.rejects(fcgiRequest(srv.address, { params: { X: 'y' }, body: pattern(8 << 20) }), { code: 'FPM_ERR_CLIENT' })
    } finally {
      await srv.close()
    }
  })

  test('protocolStatus other than REQUEST_COMPLETE rejects; a malformed CGI head rejects', async () => {
    let n = 0
    const srv = await rawServer((sock, r) => {
      if (r.type !== RecordType.BEGIN_REQUEST) return
      n++
      if (n === 1) sock.write(buildEndRequest(r.id, 0, ProtocolStatus.OVERLOADED))
      else sock.write(Buffer.concat([stdout(r.id, 'no header block'), buildEndRequest(r.id, 0, 0)]))
    })
    try {
      await assert.rejects(fcgiRequest(srv.address, { params: {} }), /refused request 1: FCGI_OVERLOADED/)
      await assert.rejects(fcgiRequest(srv.address, { params: {} }), /malformed CGI response/)
    } finally {
      await srv.close()
    }
  })

  test('abort and timeout send FCGI_ABORT_REQUEST; the id stays reserved until END_REQUEST', async () => {
    const aborts: number[] = []
    const srv = await rawServer((sock, r) => {
      if (r.type === RecordType.ABORT_REQUEST) {
        aborts.push(r.id)
        sock.write(buildEndRequest(r.id, 0, 0))
      }
    })
    const conn = await FcgiConnection.connect(srv.address)
    try {
      const ac = new AbortController()
      const p1 = conn.request({ params: {} }, { signal: ac.signal })
      ac.abort()
      await assert.rejects(p1, /request 1 aborted/)
      await assert.rejects(conn.request({ params: {} }, { timeoutMs: 50 }), /request 2 timed out after 50 ms/)
      while (aborts.length < 2 || conn.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5))
      assert.deepEqual(aborts, [1, 2])
      assert.equal(conn.closed, false)
    } finally {
      await conn.close()
      await srv.close()
    }
  })
})
