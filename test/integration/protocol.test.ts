// FastCGI protocol handling of the real server: the node-fpm CLI is started from a config
// template (test/helpers/fpm-tester.ts) and spoken to with raw FastCGI bytes over real TCP
// sockets. Records are built and parsed with the codec (src/fastcgi), never by hand, except the
// deliberately malformed ones. Every record received on every connection is checked for the
// stream-terminator rule (a zero-length STDOUT only immediately before END_REQUEST).

import { after, afterEach, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildCgiParams, parseCgiResponse } from '../../src/client/fcgi-client.ts'
import type { ParsedCgiResponse } from '../../src/client/fcgi-client.ts'
import {
  FCGI_KEEP_CONN, HEADER_LEN, ProtocolStatus, RecordParser, RecordType, Role,
  buildAbortRequest, buildBeginRequest, buildGetValues, buildStreamEnd, decodeParams, encodeParams,
  frameChunks, parseEndRequest, writeHeader
} from '../../src/fastcgi/index.ts'
import { MAX_CONNECTIONS, MAX_REQUESTS, MAX_REQUESTS_PER_CONNECTION } from '../../src/server/limits.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/protocol-apps')
const MAX_PARAMS = 8 * 1024
const BODY_BUFFER = 16 * 1024
const BODY_MAX = 64 * 1024

const CONFIG = `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 4
root = {{ROOT}}
env[MARK] = {{DIR}}/marks
request.max_params_size = ${MAX_PARAMS}
request.body_buffer_size = ${BODY_BUFFER}
request.body_max_size = ${BODY_MAX}
`

// ---------------------------------------------------------------------------------------------
// A raw FastCGI connection: writes whatever bytes it is given, keeps every record it receives.

interface Rec { readonly type: number, readonly requestId: number, readonly content: Buffer }

interface Resp {
  readonly stdout: Buffer
  readonly stderr: string
  readonly appStatus: number
  readonly protocolStatus: number
  readonly records: Rec[]
}

const opened: RawConn[] = []

class RawConn {
  readonly socket: net.Socket
  readonly records: Rec[] = []
  /** The server sent FIN. */
  ended = false
  closed = false
  /** The code of the socket's error (ECONNRESET, EPIPE...), if it had one. */
  errorCode: string | null = null
  parseError: unknown = null
  readonly #waiters = new Set<() => void>()
  readonly #from = new Map<number, number>()

  /** allowHalfOpen: the server's FIN does not end our side, so what the server did with its own side shows. */
  static async open (port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<RawConn> {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen ?? false })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const conn = new RawConn(socket)
    opened.push(conn)
    return conn
  }

  private constructor (socket: net.Socket) {
    this.socket = socket
    const parser = new RecordParser({
      onRecord: (type, requestId, content) => { this.records.push({ type, requestId, content: Buffer.from(content) }) }
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk)
      } catch (err) {
        this.parseError = err
        socket.destroy()
      }
      this.#wake()
    })
    socket.on('end', () => { this.ended = true; this.#wake() })
    socket.on('close', () => { this.closed = true; this.#wake() })
    // ECONNRESET after the server dropped us: 'close' follows
    socket.on('error', (err: Error & { code?: string }) => { this.errorCode = err.code ?? err.message; this.#wake() })
  }

  /** The client's address as the server names it in logs ("127.0.0.1:54321"). */
  get peer (): string { return `${this.socket.localAddress ?? ''}:${this.socket.localPort ?? ''}` }

  write (parts: Uint8Array[]): void {
    for (const part of parts) this.socket.write(part)
  }

  /** Resolves with the first non-undefined value of `check`, re-run on every event of the socket. */
  async until<T> (what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const run = (): void => {
        const value = check()
        if (value !== undefined) { done(); resolve(value); return }
        if (this.closed) { done(); reject(new Error(`connection closed while waiting for ${what} (records: ${summary(this.records)})`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what} (records: ${summary(this.records)})`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.#waiters.delete(run) }
      this.#waiters.add(run)
      run()
    })
  }

  async waitClosed (timeoutMs = 10_000): Promise<void> {
    if (this.closed) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('timed out waiting for the server to close the connection')) }, timeoutMs)
      this.socket.once('close', () => { clearTimeout(timer); resolve() })
    })
  }

  /** The next response to request `id` (its records up to its END_REQUEST), in arrival order. */
  async response (id: number, timeoutMs = 10_000): Promise<Resp> {
    const from = this.#from.get(id) ?? 0
    const end = await this.until(`END_REQUEST for request ${id}`, () => {
      for (let i = from; i < this.records.length; i++) {
        const r = this.records[i]!
        if (r.type === RecordType.END_REQUEST && r.requestId === id) return i
      }
      return undefined
    }, timeoutMs)
    this.#from.set(id, end + 1)
    const records = this.records.slice(from, end + 1).filter((r) => r.requestId === id)
    const stdout = Buffer.concat(records.filter((r) => r.type === RecordType.STDOUT).map((r) => r.content))
    const stderr = Buffer.concat(records.filter((r) => r.type === RecordType.STDERR).map((r) => r.content)).toString()
    const { appStatus, protocolStatus } = parseEndRequest(this.records[end]!.content)
    return { stdout, stderr, appStatus, protocolStatus, records }
  }

  #wake (): void {
    for (const w of [...this.#waiters]) w()
  }
}

/** The last records as type/id/length, for failure messages. */
function summary (records: Rec[]): string {
  return records.slice(-12).map((r) => `${r.type}/${r.requestId}/${r.content.length}`).join(' ')
}

/**
 * The stream-terminator rule on everything a connection received: a zero-length STDOUT is
 * immediately followed by that request's END_REQUEST (never a data record in the middle, php bug
 * #72185), and a completed request's END_REQUEST follows its terminator.
 */
function assertTerminators (records: Rec[]): void {
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    if (r.type === RecordType.STDOUT && r.content.length === 0) {
      const next = records[i + 1]
      assert.ok(next !== undefined && next.type === RecordType.END_REQUEST && next.requestId === r.requestId,
        `zero-length STDOUT for request ${r.requestId} at record ${i} is not immediately followed by its END_REQUEST (${summary(records.slice(0, i + 2))})`)
    }
    if (r.type === RecordType.END_REQUEST && parseEndRequest(r.content).protocolStatus === ProtocolStatus.REQUEST_COMPLETE) {
      const prev = records[i - 1]
      assert.ok(prev !== undefined && prev.type === RecordType.STDOUT && prev.content.length === 0 && prev.requestId === r.requestId,
        `END_REQUEST for request ${r.requestId} at record ${i} does not follow the empty STDOUT terminator`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Requests as records

interface ReqOpts {
  method?: string
  body?: Uint8Array | null
  /** CONTENT_LENGTH; default the body's length ('' without a body). Null: send ''. */
  contentLength?: number | null
  keepConn?: boolean
  extra?: Record<string, string>
  /** Split the encoded params into records of at most this many bytes. */
  paramsRecordBytes?: number
}

function params (uri: string, opts: ReqOpts = {}): Buffer {
  const body = opts.body ?? null
  const bodyLength = opts.contentLength === null ? undefined : opts.contentLength ?? body?.length
  const p = buildCgiParams({ uri, documentRoot: APPS, method: opts.method ?? (body === null ? 'GET' : 'POST'), bodyLength, extra: opts.extra })
  return encodeParams(Object.entries(p))
}

function begin (id: number, keepConn = true, role: number = Role.RESPONDER): Buffer {
  return buildBeginRequest(id, role, keepConn ? FCGI_KEEP_CONN : 0)
}

/** `data` as stream records of at most `size` bytes each (no terminator). */
function records (type: number, id: number, data: Uint8Array, size = 65528): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let off = 0; off < data.length; off += size) out.push(...frameChunks(type, id, data.subarray(off, Math.min(data.length, off + size))))
  return out
}

function request (id: number, uri: string, opts: ReqOpts = {}): Uint8Array[] {
  const body = opts.body ?? null
  return [
    begin(id, opts.keepConn ?? true),
    ...records(RecordType.PARAMS, id, params(uri, opts), opts.paramsRecordBytes),
    buildStreamEnd(RecordType.PARAMS, id),
    ...(body === null ? [] : records(RecordType.STDIN, id, body)),
    buildStreamEnd(RecordType.STDIN, id)
  ]
}

function http (resp: Resp): ParsedCgiResponse {
  assert.equal(resp.protocolStatus, ProtocolStatus.REQUEST_COMPLETE)
  return parseCgiResponse(resp.stdout)
}

function pattern (n: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) buf[i] = (i * 31 + seed + (i >>> 9)) & 0xff
  return buf
}

async function waitForFile (path: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let text = ''
    try { text = readFileSync(path, 'utf8') } catch {}
    if (re.test(text)) return text
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in ${path}; it holds: ${JSON.stringify(text)}`)
    await sleep(20)
  }
}

// ---------------------------------------------------------------------------------------------

let fpm: FpmHandle
let mark: string

before(async () => {
  fpm = await startFpm(CONFIG, { root: APPS })
  mark = join(fpm.dir, 'marks')
})

afterEach(() => {
  const conns = opened.splice(0)
  for (const c of conns) c.socket.destroy()
  for (const c of conns) assertTerminators(c.records)
})

after(async () => {
  const code = await fpm?.stop()
  assert.equal(code, 0, 'node-fpm exits 0 on SIGTERM')
  const fatal = fpm.logs.filter((l) => l.level >= 60)
  assert.deepEqual(fatal, [], 'no fatal log line')
})

describe('keep-alive', () => {
  test('FCGI_KEEP_CONN: 3 sequential requests on one socket (same id reused)', async () => {
    const conn = await RawConn.open(fpm.port)
    for (const tag of ['a', 'b', 'c']) {
      conn.write(request(1, `/hello.mjs?tag=${tag}`))
      const res = http(await conn.response(1))
      assert.equal(res.status, 200)
      assert.equal(res.body.toString(), `hello ${tag}`)
      assert.equal(conn.ended, false, 'the server keeps the connection')
    }
    await sleep(100)
    assert.equal(conn.ended || conn.closed, false, 'still open after the third response')
  })

  test('without FCGI_KEEP_CONN the server closes the connection after END_REQUEST', async () => {
    const conn = await RawConn.open(fpm.port)
    conn.write(request(1, '/hello.mjs?tag=once', { keepConn: false }))
    const res = http(await conn.response(1))
    assert.equal(res.body.toString(), 'hello once')
    // The server ends its side at once (well before its 5 s linger timer would destroy it).
    await conn.until('FIN from the server', () => conn.ended ? true : undefined, 3000)
    const endAt = conn.records.findIndex((r) => r.type === RecordType.END_REQUEST)
    assert.equal(endAt, conn.records.length - 1, 'END_REQUEST is the last record before the close')
  })

  /** Writes `bytes` every 50 ms, `times` times at most, until the connection had an error. */
  async function writeUntilError (conn: RawConn, bytes: Uint8Array, times: number): Promise<void> {
    for (let i = 0; i < times && conn.errorCode === null && !conn.socket.destroyed; i++) {
      conn.socket.write(bytes)
      await sleep(50)
    }
  }

  test('without FCGI_KEEP_CONN and with the input complete, the server closes at once (as php-fpm does)', async () => {
    const conn = await RawConn.open(fpm.port, { allowHalfOpen: true })
    conn.write(request(1, '/hello.mjs?tag=closed', { keepConn: false }))
    assert.equal(http(await conn.response(1)).body.toString(), 'hello closed')
    await conn.until('FIN from the server', () => conn.ended ? true : undefined, 3000)
    // Closed, not half-open: what the client sends now is refused with a reset.
    await writeUntilError(conn, buildGetValues(['FCGI_MAX_CONNS']), 40)
    assert.match(String(conn.errorCode), /^(EPIPE|ECONNRESET)$/)
  })

  test('without FCGI_KEEP_CONN, a response sent before the body ended (413) still ends gracefully', async () => {
    const conn = await RawConn.open(fpm.port, { allowHalfOpen: true })
    const body = pattern(BODY_MAX + 1000, 5)
    // BEGIN_REQUEST and the params: the 413 comes from CONTENT_LENGTH alone, before any body byte.
    conn.write([begin(2, false), ...records(RecordType.PARAMS, 2, params('/count-body.mjs', { body })), buildStreamEnd(RecordType.PARAMS, 2)])
    const chunk = Buffer.concat(records(RecordType.STDIN, 2, body.subarray(0, 4096)))
    // The client keeps sending the body, as a web server that already started would.
    const sending = writeUntilError(conn, chunk, 20)
    const res = http(await conn.response(2))
    assert.equal(res.status, 413)
    await conn.until('FIN from the server', () => conn.ended ? true : undefined, 3000)
    await sending
    await writeUntilError(conn, chunk, 5)
    assert.equal(conn.errorCode, null, 'the server reads and drops the rest of the body: no reset')
    conn.socket.end()
  })
})

describe('multiplexing and params framing', () => {
  test('two requests interleaved on one connection (ids 7 and 300) are both answered correctly', async () => {
    const conn = await RawConn.open(fpm.port)
    const one = pattern(40_000, 1) // > body_buffer_size: both bodies stream
    const two = pattern(40_000, 2)
    const p7 = params('/echo.mjs?tag=seven', { body: one })
    const p300 = params('/echo.mjs?tag=three-hundred', { body: two })
    const third = (b: Buffer, i: number): Buffer => b.subarray(Math.floor(b.length * i / 3), Math.floor(b.length * (i + 1) / 3))
    const out: Uint8Array[] = [begin(7), begin(300)]
    for (let i = 0; i < 3; i++) out.push(...frameChunks(RecordType.PARAMS, 7, third(p7, i)), ...frameChunks(RecordType.PARAMS, 300, third(p300, i)))
    out.push(buildStreamEnd(RecordType.PARAMS, 300), buildStreamEnd(RecordType.PARAMS, 7))
    for (let off = 0; off < one.length; off += 8192) {
      out.push(...frameChunks(RecordType.STDIN, 300, two.subarray(off, off + 8192)), ...frameChunks(RecordType.STDIN, 7, one.subarray(off, off + 8192)))
    }
    out.push(buildStreamEnd(RecordType.STDIN, 7), buildStreamEnd(RecordType.STDIN, 300))
    conn.write(out)
    const [r7, r300] = await Promise.all([conn.response(7), conn.response(300)])
    const h7 = http(r7)
    const h300 = http(r300)
    assert.equal(h7.status, 200)
    assert.equal(h300.status, 200)
    assert.ok(h7.body.equals(one), 'request 7 got its own body back')
    assert.ok(h300.body.equals(two), 'request 300 got its own body back')
    assert.ok(conn.records.every((r) => r.requestId === 7 || r.requestId === 300), 'every record carries one of the two ids')
  })

  test('PARAMS split across many records, pairs and 4-byte lengths spanning record boundaries', async () => {
    const conn = await RawConn.open(fpm.port)
    const long = 'L'.repeat(3000) // 4-byte value length
    const extra = { HTTP_X_LONG: long, HTTP_X_SHORT: 'short', CUSTOM_PARAM: 'custom value' }
    // 7 bytes per record: nearly every pair, and some length fields, straddle two records.
    conn.write(request(5, '/info.mjs?q=1', { extra, paramsRecordBytes: 7 }))
    const res = http(await conn.response(5))
    assert.equal(res.status, 200)
    const info = JSON.parse(res.body.toString()) as { method: string, url: string, headers: Record<string, string>, env: Record<string, string> }
    assert.equal(info.method, 'GET')
    assert.equal(info.url, 'http://localhost/info.mjs?q=1')
    assert.equal(info.headers['x-long'], long)
    assert.equal(info.headers['x-short'], 'short')
    assert.equal(info.env.CUSTOM_PARAM, 'custom value')
    assert.equal(info.env.SCRIPT_FILENAME, join(APPS, 'info.mjs'))
    assert.equal(info.env.MARK, mark, 'the pool env is there too')

    // The same on a second request of the connection, with records of 1 byte.
    conn.write(request(6, '/info.mjs?q=2', { extra: { HTTP_X_ONE: 'byte by byte' }, paramsRecordBytes: 1 }))
    const again = JSON.parse(http(await conn.response(6)).body.toString()) as { headers: Record<string, string> }
    assert.equal(again.headers['x-one'], 'byte by byte')
  })
})

describe('the params the server reads itself', () => {
  test('without SCRIPT_FILENAME, PATH_TRANSLATED names the script (php-fpm\'s fallback); REQUEST_METHOD HEAD gets no body', async () => {
    const conn = await RawConn.open(fpm.port)
    const p = buildCgiParams({ uri: '/info.mjs?q=pt', documentRoot: APPS, method: 'GET' })
    delete p.SCRIPT_FILENAME
    p.PATH_TRANSLATED = join(APPS, 'info.mjs')
    conn.write([begin(1), ...records(RecordType.PARAMS, 1, encodeParams(Object.entries(p))), buildStreamEnd(RecordType.PARAMS, 1), buildStreamEnd(RecordType.STDIN, 1)])
    const res = http(await conn.response(1))
    assert.equal(res.status, 200)
    const info = JSON.parse(res.body.toString()) as { url: string, env: Record<string, string> }
    assert.equal(info.url, 'http://localhost/info.mjs?q=pt')
    assert.equal(info.env.SCRIPT_FILENAME, undefined)
    assert.equal(info.env.PATH_TRANSLATED, join(APPS, 'info.mjs'))

    conn.write(request(2, '/info.mjs?q=head', { method: 'HEAD' }))
    const head = http(await conn.response(2))
    assert.equal(head.status, 200)
    assert.equal(head.body.length, 0, 'no body for HEAD')
  })
})

describe('management records and roles', () => {
  test('GET_VALUES -> GET_VALUES_RESULT with the limits the server applies; the connection stays usable', async () => {
    const conn = await RawConn.open(fpm.port)
    conn.write([buildGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', 'FCGI_NOT_A_VARIABLE'])])
    const rec = await conn.until('GET_VALUES_RESULT', () => conn.records.find((r) => r.type === RecordType.GET_VALUES_RESULT))
    assert.equal(rec.requestId, 0)
    const flat: string[] = []
    decodeParams(rec.content, flat)
    const values: Record<string, string> = {}
    for (let i = 0; i < flat.length; i += 2) values[flat[i]!] = flat[i + 1]!
    assert.deepEqual(values, {
      FCGI_MAX_CONNS: String(MAX_CONNECTIONS),
      FCGI_MAX_REQS: String(MAX_REQUESTS),
      FCGI_MPXS_CONNS: '1'
    })
    conn.write(request(1, '/hello.mjs?tag=after-values'))
    assert.equal(http(await conn.response(1)).body.toString(), 'hello after-values')
    // and once more, after a request (php's bug76922 sequence)
    conn.write([buildGetValues(['FCGI_MPXS_CONNS'])])
    await conn.until('a second GET_VALUES_RESULT', () => conn.records.filter((r) => r.type === RecordType.GET_VALUES_RESULT).length === 2 ? true : undefined)
  })

  test('an unknown management record type -> UNKNOWN_TYPE naming it; the connection stays usable', async () => {
    const conn = await RawConn.open(fpm.port)
    const rec = Buffer.alloc(HEADER_LEN + 8)
    writeHeader(rec, 0, 42, 0, 8, 0)
    conn.write([rec])
    const reply = await conn.until('UNKNOWN_TYPE', () => conn.records.find((r) => r.type === RecordType.UNKNOWN_TYPE))
    assert.equal(reply.requestId, 0)
    assert.equal(reply.content.length, 8)
    assert.equal(reply.content[0], 42)
    conn.write(request(1, '/hello.mjs?tag=after-unknown'))
    assert.equal(http(await conn.response(1)).body.toString(), 'hello after-unknown')
  })

  for (const [name, role] of [['AUTHORIZER', Role.AUTHORIZER], ['FILTER', Role.FILTER]] as const) {
    test(`${name} role -> END_REQUEST(FCGI_UNKNOWN_ROLE), no output; the rest of that request is ignored`, async () => {
      const conn = await RawConn.open(fpm.port)
      const req = request(3, '/hello.mjs?tag=role', { body: Buffer.from('data') })
      req[0] = begin(3, true, role)
      conn.write(req)
      const res = await conn.response(3)
      assert.equal(res.protocolStatus, ProtocolStatus.UNKNOWN_ROLE)
      assert.deepEqual(res.records.map((r) => r.type), [RecordType.END_REQUEST], 'END_REQUEST alone, no STDOUT')
      conn.write(request(3, '/hello.mjs?tag=responder'))
      assert.equal(http(await conn.response(3)).body.toString(), 'hello responder')
    })
  }
})

describe('malformed input closes that connection only', () => {
  const beginBody5 = (): Buffer => {
    const buf = Buffer.alloc(HEADER_LEN + 8)
    writeHeader(buf, 0, RecordType.BEGIN_REQUEST, 1, 5, 3)
    buf.writeUInt16BE(Role.RESPONDER, 8)
    return buf
  }
  const cases: Array<{ name: string, bytes: () => Uint8Array[], log: RegExp }> = [
    {
      name: 'a bad version byte',
      bytes: () => { const b = begin(1); b[0] = 2; return [b] },
      log: /unsupported FastCGI version 2/
    },
    { name: 'BEGIN_REQUEST with a 5-byte body', bytes: () => [beginBody5()], log: /BEGIN_REQUEST body must be 8 bytes, got 5/ },
    {
      name: 'a duplicate BEGIN_REQUEST for an active id',
      bytes: () => [begin(1), ...frameChunks(RecordType.PARAMS, 1, params('/hello.mjs').subarray(0, 20)), begin(1)],
      log: /duplicate FCGI_BEGIN_REQUEST for request id 1/
    },
    {
      name: 'STDIN before the end of PARAMS',
      bytes: () => [begin(1), ...frameChunks(RecordType.PARAMS, 1, params('/hello.mjs').subarray(0, 20)), ...frameChunks(RecordType.STDIN, 1, Buffer.from('x'))],
      log: /FCGI_STDIN before the params stream ended/
    }
  ]
  for (const c of cases) {
    test(`${c.name}: connection closed, a warning names the peer, another connection keeps working`, async () => {
      const good = await RawConn.open(fpm.port)
      const bad = await RawConn.open(fpm.port)
      const peer = bad.peer
      bad.write(c.bytes())
      await bad.waitClosed()
      assert.equal(bad.records.length, 0, 'nothing is answered on the bad connection')
      const line = await fpm.waitForLog((l: LogLine) => l.level === 40 && l.msg.includes(`from ${peer}:`))
      assert.match(line.msg, c.log)
      good.write(request(9, '/hello.mjs?tag=still-here'))
      assert.equal(http(await good.response(9)).body.toString(), 'hello still-here')
    })
  }
})

describe('aborts', () => {
  /** Runs wait-abort.mjs as request `id`, aborts it once it started, and returns its END_REQUEST (REQUEST_COMPLETE). */
  async function abortWhileWaiting (id: number, tag: string, query = ''): Promise<{ conn: RawConn, res: Resp }> {
    const conn = await RawConn.open(fpm.port)
    conn.write(request(id, `/wait-abort.mjs?tag=${tag}${query}`))
    await waitForFile(mark, new RegExp(`^started ${tag}$`, 'm'))
    conn.write([buildAbortRequest(id)])
    const res = await conn.response(id)
    assert.equal(res.protocolStatus, ProtocolStatus.REQUEST_COMPLETE)
    return { conn, res }
  }

  test('FCGI_ABORT_REQUEST on a running request: END_REQUEST arrives and request.signal fired', async () => {
    const { conn, res } = await abortWhileWaiting(11, 'abort-record')
    assert.equal(res.stdout.length, 0, 'no output for the aborted request')
    await waitForFile(mark, /^aborted abort-record FPM_ERR_REQUEST_ABORTED$/m)
    // the connection (keep-conn) and the id stay usable
    conn.write(request(11, '/hello.mjs?tag=after-abort'))
    assert.equal(http(await conn.response(11)).body.toString(), 'hello after-abort')
  })

  test('FCGI_ABORT_REQUEST before the handler first reads request.signal: the signal it gets is already aborted', async () => {
    await abortWhileWaiting(13, 'abort-unread', '&late=700')
    await waitForFile(mark, /^aborted abort-unread FPM_ERR_REQUEST_ABORTED$/m)
  })

  test('FCGI_ABORT_REQUEST during a streamed response: END_REQUEST, nothing after it, the handler stops', async () => {
    const conn = await RawConn.open(fpm.port)
    const progress = `${mark}.progress-abort-stream`
    const produced = (): number => { try { return Number(readFileSync(progress, 'utf8')) } catch { return 0 } }
    conn.write(request(12, '/download.mjs?mib=256&tag=abort-stream'))
    const stdoutBytes = (): number => conn.records.reduce((n, r) => n + (r.type === RecordType.STDOUT && r.requestId === 12 ? r.content.length : 0), 0)
    await conn.until('2 MB of the response', () => stdoutBytes() > 2 * 1024 * 1024 ? true : undefined)
    conn.write([buildAbortRequest(12)])
    const res = await conn.response(12)
    assert.equal(res.protocolStatus, ProtocolStatus.REQUEST_COMPLETE)
    const endAt = conn.records.findIndex((r) => r.type === RecordType.END_REQUEST && r.requestId === 12)
    await sleep(300)
    assert.equal(conn.records.length, endAt + 1, 'no record after END_REQUEST')
    const stopped = produced()
    await sleep(300)
    assert.equal(produced(), stopped, 'the handler stopped producing')
    assert.ok(stopped < 64 * 1024 * 1024, `the handler produced ${stopped} bytes of 256 MiB`)
    conn.write(request(12, '/hello.mjs?tag=after-stream-abort'))
    assert.equal(http(await conn.response(12)).body.toString(), 'hello after-stream-abort')
  })

  test('the web server dropping the connection mid-request fires request.signal', async () => {
    const conn = await RawConn.open(fpm.port)
    conn.write(request(1, '/wait-abort.mjs?tag=dropped'))
    await waitForFile(mark, /^started dropped$/m)
    conn.socket.destroy()
    await waitForFile(mark, /^aborted dropped FPM_ERR_REQUEST_ABORTED$/m)
    // the handler returned (its thread is free) and the server serves on
    const probe = await RawConn.open(fpm.port)
    probe.write(request(1, '/hello.mjs?tag=after-drop'))
    assert.equal(http(await probe.response(1)).body.toString(), 'hello after-drop')
  })
})

describe('aborts of queued requests', () => {
  test('a request aborted while queued for a thread (ABORT_REQUEST, or its connection dropped): END_REQUEST at once, and its signal fires as soon as a thread takes it', async () => {
    // All 4 threads busy...
    const busy = await RawConn.open(fpm.port)
    for (let id = 1; id <= 4; id++) busy.write(request(id, `/wait-abort.mjs?tag=busy${id}`))
    for (let id = 1; id <= 4; id++) await waitForFile(mark, new RegExp(`^started busy${id}$`, 'm'))
    // ...so these two wait in the pool's queue.
    const queued = await RawConn.open(fpm.port)
    queued.write(request(5, '/wait-abort.mjs?tag=queued-aborted'))
    const dropped = await RawConn.open(fpm.port)
    dropped.write(request(1, '/wait-abort.mjs?tag=queued-dropped'))
    await sleep(300)
    assert.doesNotMatch(readFileSync(mark, 'utf8'), /started queued/, 'no thread was free')
    queued.write([buildAbortRequest(5)])
    const res = await queued.response(5, 3000)
    assert.equal(res.stdout.length, 0)
    dropped.socket.destroy()
    await sleep(100)
    // Free the threads: the two aborted requests are first in the queue, then the probe.
    for (let id = 1; id <= 4; id++) busy.write([buildAbortRequest(id)])
    for (let id = 1; id <= 4; id++) await busy.response(id)
    for (let id = 1; id <= 4; id++) await waitForFile(mark, new RegExp(`^aborted busy${id} `, 'm'))
    const probe = await RawConn.open(fpm.port)
    for (let id = 1; id <= 4; id++) probe.write(request(id, `/hello.mjs?tag=p${id}`))
    for (let id = 1; id <= 4; id++) assert.equal(http(await probe.response(id, 5000)).body.toString(), `hello p${id}`)
    // The handler of an aborted request should not run at all; when it does start (the ABORT and
    // the task reach the thread on different ports), its signal must fire at once. The handler
    // gives up on its own only after 20 s: a lost ABORT holds a thread that long (or forever).
    for (const tag of ['queued-aborted', 'queued-dropped']) {
      const marks = readFileSync(mark, 'utf8')
      if (marks.includes(`started ${tag}\n`)) await waitForFile(mark, new RegExp(`^aborted ${tag} FPM_ERR_REQUEST_ABORTED$`, 'm'), 5000)
    }
  })
})

describe('limits', () => {
  test(`more than ${MAX_REQUESTS_PER_CONNECTION} requests at once on one connection: END_REQUEST(FCGI_OVERLOADED) for the extra one`, async () => {
    const conn = await RawConn.open(fpm.port)
    const out: Uint8Array[] = []
    for (let id = 1; id <= MAX_REQUESTS_PER_CONNECTION + 1; id++) out.push(begin(id))
    conn.write(out)
    const extra = await conn.response(MAX_REQUESTS_PER_CONNECTION + 1)
    assert.equal(extra.protocolStatus, ProtocolStatus.OVERLOADED)
    assert.deepEqual(extra.records.map((r) => r.type), [RecordType.END_REQUEST])
    assert.equal(conn.records.length, 1, 'the others are still open')
    // The open ones (still in their PARAMS stage) can be aborted, and then the connection serves again.
    const aborts: Uint8Array[] = []
    for (let id = 1; id <= MAX_REQUESTS_PER_CONNECTION; id++) aborts.push(buildAbortRequest(id))
    conn.write(aborts)
    for (let id = 1; id <= MAX_REQUESTS_PER_CONNECTION; id++) await conn.response(id)
    conn.write(request(1, '/hello.mjs?tag=after-overload'))
    assert.equal(http(await conn.response(1)).body.toString(), 'hello after-overload')
  })

  test('params over request.max_params_size -> 431, and the server still serves', async () => {
    const conn = await RawConn.open(fpm.port)
    const big = 'x'.repeat(MAX_PARAMS * 2)
    // 1 KiB records: the limit is crossed in the middle of the PARAMS stream, the rest is discarded
    conn.write(request(2, '/hello.mjs?tag=big', { extra: { HTTP_X_BIG: big }, paramsRecordBytes: 1024 }))
    const res = http(await conn.response(2))
    assert.equal(res.status, 431)
    assert.equal(res.body.toString(), 'Request Header Fields Too Large\n')
    await fpm.waitForLog((l) => /max_params_size/.test(l.msg))
    conn.write(request(2, '/hello.mjs?tag=small'))
    assert.equal(http(await conn.response(2)).body.toString(), 'hello small')
    const other = await RawConn.open(fpm.port)
    other.write(request(1, '/hello.mjs?tag=other'))
    assert.equal(http(await other.response(1)).body.toString(), 'hello other')
  })

  test('a body over request.body_max_size with a known CONTENT_LENGTH -> 413', async () => {
    const conn = await RawConn.open(fpm.port)
    conn.write(request(4, '/count-body.mjs', { body: pattern(BODY_MAX + 1000, 3) }))
    const res = http(await conn.response(4))
    assert.equal(res.status, 413)
    assert.equal(res.body.toString(), 'Request Entity Too Large\n')
    conn.write(request(4, '/hello.mjs?tag=after-413'))
    assert.equal(http(await conn.response(4)).body.toString(), 'hello after-413')
  })

  test('a streamed body without CONTENT_LENGTH: under the cap it arrives whole, over it -> 413', async () => {
    const conn = await RawConn.open(fpm.port)
    const fits = pattern(BODY_MAX - 100, 4)
    conn.write(request(1, '/count-body.mjs', { body: fits, contentLength: null }))
    const ok = http(await conn.response(1))
    assert.equal(ok.status, 200)
    const counted = JSON.parse(ok.body.toString()) as { bytes: number, sha256: string }
    assert.equal(counted.bytes, fits.length)
    assert.equal(counted.sha256, createHash('sha256').update(fits).digest('hex'))

    conn.write(request(2, '/count-body.mjs', { body: pattern(BODY_MAX * 3, 5), contentLength: null }))
    const res = http(await conn.response(2))
    assert.equal(res.status, 413)
    conn.write(request(3, '/hello.mjs?tag=after-streamed-413'))
    assert.equal(http(await conn.response(3)).body.toString(), 'hello after-streamed-413')
  })
})
