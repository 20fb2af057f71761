// Large bodies through the real server, both ways, over raw FastCGI on real TCP: a 100 MB upload
// written with backpressure, a 64 MiB download read by a deliberately slow reader, and several
// body streams multiplexed on one connection. Bytes are checked exactly (sha256 or byte by byte)
// and the server's memory (VmRSS of the node-fpm process, worker threads included) must stay far
// below the size of what went through: the server has to apply backpressure, not buffer.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildCgiParams, findCgiHeadEnd, parseCgiResponse } from '../../src/client/fcgi-client.ts'
import {
  FCGI_KEEP_CONN, ProtocolStatus, RecordParser, RecordType, Role,
  buildBeginRequest, buildStreamEnd, encodeParams, frameChunks, parseEndRequest
} from '../../src/fastcgi/index.ts'
import { HAS_PROC, REPO, rssBytes, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/protocol-apps')
const MB = 1_000_000
const MiB = 1024 * 1024
/**
 * Bound on the server's RSS growth while 64-100 MB go through it. Every uploaded byte is
 * allocated twice (the socket read, then the exact-size copy moved to the worker) and V8 collects
 * such external memory lazily (a full collection once ~64 MB more of it is held, per isolate), so
 * even a bounded server shows 55-87 MB of growth on a 100 MB upload (less when something else
 * makes the main thread collect often, as per-request Map churn did before common/id-map.ts);
 * without backpressure it shows 108-165 MB. The backpressure itself is asserted by
 * MAX_UPLOAD_LEAD_BYTES.
 */
const MAX_UPLOAD_GROWTH_BYTES = 100 * MB
const MAX_DOWNLOAD_GROWTH_BYTES = 60 * MB
/** How far the web server may be ahead of a slow handler: socket buffers of both ends (Linux
 * autotuning can take the receive buffer to tens of MB) plus the server's 1 MiB body queue. */
const MAX_UPLOAD_LEAD_BYTES = 48 * MB

const CONFIG = `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 3
root = {{ROOT}}
env[MARK] = {{DIR}}/marks
request.body_max_size = 0
`

// ---------------------------------------------------------------------------------------------
// Server memory

/** Samples the server's RSS every 20 ms until stop(); `peak` is the largest sample. */
class RssSampler {
  readonly base: number
  peak: number
  readonly #timer: NodeJS.Timeout
  readonly #pid: number

  constructor (pid: number) {
    this.#pid = pid
    this.base = rssBytes(pid)
    this.peak = this.base
    this.#timer = setInterval(() => { this.sample() }, 20)
    this.#timer.unref() // a failed test must not keep the process alive
    samplers.add(this)
  }

  sample (): number {
    const now = rssBytes(this.#pid)
    if (now > this.peak) this.peak = now
    return now
  }

  stop (): number {
    clearInterval(this.#timer)
    samplers.delete(this)
    this.sample()
    return this.peak - this.base
  }
}

const samplers = new Set<RssSampler>()

function mb (bytes: number): string { return `${(bytes / MB).toFixed(1)} MB` }

// ---------------------------------------------------------------------------------------------
// A raw FastCGI connection that streams: request bodies are written with backpressure, response
// bodies go to a callback (or are collected), and the record stream is checked as it arrives.

interface Response {
  head: string | null
  status: number
  /** Collected body (only when no onBody callback was given). */
  body: Buffer[]
  bodyBytes: number
  end: { appStatus: number, protocolStatus: number } | null
  onBody: ((chunk: Buffer) => void) | null
  headBuf: Buffer[]
  done: Promise<void>
  resolve: () => void
}

class Conn {
  readonly socket: net.Socket
  readonly responses = new Map<number, Response>()
  /** Broken record-stream rules (checked at the end of each test). */
  readonly violations: string[] = []
  closed = false
  #emptyStdoutOf: number | null = null
  #drainWaiters: Array<() => void> = []

  static async open (port: number): Promise<Conn> {
    const socket = net.connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new Conn(socket)
  }

  private constructor (socket: net.Socket) {
    this.socket = socket
    const parser = new RecordParser({ onRecord: (type, id, content) => { this.#onRecord(type, id, content) } })
    socket.on('data', (chunk: Buffer) => { parser.push(chunk) })
    socket.on('drain', () => { const w = this.#drainWaiters; this.#drainWaiters = []; for (const f of w) f() })
    socket.on('close', () => {
      this.closed = true
      for (const f of this.#drainWaiters) f()
      for (const [id, r] of this.responses) if (r.end === null) { this.violations.push(`connection closed before END_REQUEST ${id}`); r.resolve() }
    })
    socket.on('error', () => {})
  }

  /** Writes records; waits for 'drain' when the socket buffer is full (client-side backpressure). */
  async write (parts: Uint8Array[]): Promise<void> {
    if (this.closed) throw new Error('connection closed')
    this.socket.cork()
    let ok = true
    for (const p of parts) ok = this.socket.write(p)
    this.socket.uncork()
    if (!ok) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((resolve) => { this.#drainWaiters.push(resolve) }),
        new Promise<void>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('the server stopped reading for 15 s')) }, 15_000) })
      ])
      clearTimeout(timer)
    }
  }

  /** BEGIN_REQUEST + PARAMS; the body follows with stdin()/endStdin(). */
  async begin (id: number, uri: string, opts: { method?: string, contentLength?: number, onBody?: (chunk: Buffer) => void } = {}): Promise<Response> {
    const params = buildCgiParams({ uri, documentRoot: APPS, method: opts.method ?? 'POST', bodyLength: opts.contentLength })
    const { promise, resolve } = Promise.withResolvers<void>()
    const r: Response = { head: null, status: 0, body: [], bodyBytes: 0, end: null, onBody: opts.onBody ?? null, headBuf: [], done: promise, resolve }
    this.responses.set(id, r)
    await this.write([
      buildBeginRequest(id, Role.RESPONDER, FCGI_KEEP_CONN),
      ...frameChunks(RecordType.PARAMS, id, encodeParams(Object.entries(params))),
      buildStreamEnd(RecordType.PARAMS, id)
    ])
    return r
  }

  async stdin (id: number, data: Uint8Array): Promise<void> {
    await this.write(frameChunks(RecordType.STDIN, id, data))
  }

  async endStdin (id: number): Promise<void> {
    await this.write([buildStreamEnd(RecordType.STDIN, id)])
  }

  #onRecord (type: number, id: number, content: Buffer): void {
    if (this.#emptyStdoutOf !== null && !(type === RecordType.END_REQUEST && id === this.#emptyStdoutOf)) {
      this.violations.push(`zero-length STDOUT of request ${this.#emptyStdoutOf} followed by record type ${type} of request ${id}`)
    }
    if (type === RecordType.END_REQUEST && this.#emptyStdoutOf !== id) this.violations.push(`END_REQUEST ${id} without the STDOUT terminator just before`)
    this.#emptyStdoutOf = type === RecordType.STDOUT && content.length === 0 ? id : null
    const r = this.responses.get(id)
    if (r === undefined) { this.violations.push(`record type ${type} for unknown request ${id}`); return }
    if (type === RecordType.STDOUT && content.length > 0) {
      if (r.head === null) {
        r.headBuf.push(Buffer.from(content))
        const all = Buffer.concat(r.headBuf)
        const end = findCgiHeadEnd(all)
        if (end < 0) return
        r.head = all.toString('latin1', 0, end)
        r.status = parseCgiResponse(all.subarray(0, end)).status
        r.headBuf = []
        content = all.subarray(end)
        if (content.length === 0) return
      }
      r.bodyBytes += content.length
      if (r.onBody !== null) r.onBody(content)
      else r.body.push(Buffer.from(content))
    } else if (type === RecordType.END_REQUEST) {
      r.end = parseEndRequest(content)
      r.resolve()
    }
  }

  async response (id: number, timeoutMs = 20_000): Promise<Response> {
    const r = this.responses.get(id)
    assert.ok(r !== undefined)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([r.done, new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out waiting for request ${id}`)) }, timeoutMs) })])
    clearTimeout(timer)
    assert.ok(r.end !== null, `END_REQUEST for request ${id}`)
    assert.equal(r.end.protocolStatus, ProtocolStatus.REQUEST_COMPLETE)
    return r
  }
}

function json (r: Response): { bytes: number, chunks: number, sha256: string } {
  assert.equal(r.status, 200, `status 200 (head: ${r.head ?? ''}, body: ${Buffer.concat(r.body).toString().slice(0, 200)})`)
  return JSON.parse(Buffer.concat(r.body).toString()) as { bytes: number, chunks: number, sha256: string }
}

// ---------------------------------------------------------------------------------------------

let fpm: FpmHandle
const conns: Conn[] = []

async function open (): Promise<Conn> {
  const c = await Conn.open(fpm.port)
  conns.push(c)
  return c
}

before(async () => {
  // --no-supervisor: the RSS samples below read fpm.child, which must be the server itself.
  fpm = await startFpm(CONFIG, { root: APPS, args: ['--no-supervisor'] })
  // Warm up through the paths the tests take, so that the RSS baseline already holds what the
  // server allocates once (thread heaps, module code, socket and message buffers): a 16 MB
  // upload to a slow reader, a 16 MiB download, a 3 MiB echo.
  const c = await open()
  await c.begin(1, '/count-body.mjs?pause=1', { contentLength: 16 * MB })
  for (let i = 0; i < 16; i++) await c.stdin(1, randomBytes(MB))
  await c.endStdin(1)
  assert.equal(json(await c.response(1)).bytes, 16 * MB)
  await c.begin(2, '/download.mjs?mib=16', { method: 'GET', onBody: () => {} })
  await c.endStdin(2)
  assert.equal((await c.response(2)).bodyBytes, 16 * MiB)
  await c.begin(3, '/echo.mjs', { contentLength: 3 * MiB })
  await c.stdin(3, randomBytes(3 * MiB))
  await c.endStdin(3)
  assert.equal((await c.response(3)).bodyBytes, 3 * MiB)
  c.socket.destroy()
  await sleep(300)
}, { timeout: 30_000 })

after(async () => {
  for (const s of samplers) s.stop()
  for (const c of conns) c.socket.destroy()
  for (const c of conns) assert.deepEqual(c.violations, [], 'record stream rules')
  assert.equal(await fpm?.stop(), 0)
})

describe('request bodies', () => {
  test('a 100 MB upload streams through to a slow handler: exact bytes (sha256), bounded server memory', { timeout: 60_000 }, async (t) => {
    const total = 100 * MB
    const conn = await open()
    const sampler = HAS_PROC ? new RssSampler(fpm.child.pid!) : null
    const progressFile = join(fpm.dir, 'marks.progress-up')
    // The handler rewrites the file (writeFileSync truncates first): an empty read is a write under way, not 0.
    const consumed = (): number => {
      for (let tries = 0; tries < 1000; tries++) {
        let text: string
        try { text = readFileSync(progressFile, 'utf8') } catch { return 0 }
        if (text !== '') return Number(text)
      }
      return 0
    }
    // pause=1: the handler sleeps after every chunk, so the server must stop reading the socket.
    await conn.begin(1, '/count-body.mjs?pause=1&tag=up', { contentLength: total })
    const base = randomBytes(MiB)
    const hash = createHash('sha256')
    const started = performance.now()
    for (let sent = 0, block = 0; sent < total; block++) {
      const n = Math.min(MiB, total - sent)
      const chunk = Buffer.from(base.subarray(0, n)) // a fresh buffer: the socket may still hold the last one
      chunk.writeUInt32BE(block, 0)
      hash.update(chunk)
      await conn.stdin(1, chunk)
      sent += n
    }
    await conn.endStdin(1)
    // Every byte has left the client: the handler must have read nearly all of them already.
    const consumedAtLastWrite = consumed()
    const res = json(await conn.response(1, 50_000))
    const seconds = (performance.now() - started) / 1000
    const growth = sampler?.stop() ?? null
    assert.equal(res.bytes, total, 'the handler saw every byte')
    assert.equal(res.sha256, hash.digest('hex'), 'and exactly the bytes that were sent')
    const line = `100 MB upload in ${seconds.toFixed(2)} s (${res.chunks} chunks in the handler); when the last byte was written the handler had read ${mb(consumedAtLastWrite)}; ` +
      `server RSS ${sampler === null ? 'not measured (no /proc)' : `${mb(sampler.base)} -> peak ${mb(sampler.peak)}: growth ${mb(growth!)}`}`
    console.log(line)
    t.diagnostic(line)
    assert.ok(total - consumedAtLastWrite < MAX_UPLOAD_LEAD_BYTES,
      `the client could write ${mb(total - consumedAtLastWrite)} ahead of the handler: the server is not applying backpressure`)
    if (growth !== null) assert.ok(growth < MAX_UPLOAD_GROWTH_BYTES, `server RSS grew by ${mb(growth)} during a 100 MB upload (limit ${mb(MAX_UPLOAD_GROWTH_BYTES)})`)
  })

  test('multiplexed body streams on one connection do not corrupt each other', { timeout: 30_000 }, async () => {
    const conn = await open()
    const size = 3 * MiB + 12345
    const bodies = [randomBytes(size), randomBytes(size), randomBytes(size)]
    await conn.begin(1, '/count-body.mjs', { contentLength: size })
    await conn.begin(2, '/echo.mjs', { contentLength: size })
    await conn.begin(3, '/count-body.mjs') // no CONTENT_LENGTH: streamed once past the buffer size
    // Round robin in pieces of varying size, so records of the three requests interleave.
    const pieces = [65528, 1000, 30000, 7, 65535]
    const offsets = [0, 0, 0]
    for (let turn = 0; offsets.some((o) => o < size); turn++) {
      for (let i = 0; i < 3; i++) {
        const off = offsets[i]!
        if (off >= size) continue
        const n = Math.min(pieces[(turn + i) % pieces.length]!, size - off)
        await conn.stdin(i + 1, bodies[i]!.subarray(off, off + n))
        offsets[i] = off + n
      }
    }
    for (let id = 1; id <= 3; id++) await conn.endStdin(id)
    const [r1, r2, r3] = await Promise.all([conn.response(1), conn.response(2), conn.response(3)])
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
    assert.deepEqual(json(r1), { bytes: size, chunks: json(r1).chunks, sha256: sha(bodies[0]!) })
    assert.equal(r2.status, 200)
    const echoed = Buffer.concat(r2.body)
    assert.equal(echoed.length, size)
    assert.ok(echoed.equals(bodies[1]!), 'the echoed body is the one sent for request 2')
    assert.deepEqual(json(r3), { bytes: size, chunks: json(r3).chunks, sha256: sha(bodies[2]!) })
  })
})

describe('more multiplexed bodies than threads', () => {
  // Regression: the connection stopped reading once the bodies of requests still queued for a
  // thread filled its buffer, while a running handler waited for its own bytes queued behind
  // them in the socket: both requests, and the thread, stuck for good.
  test('5 streamed uploads interleaved on one connection with 3 threads: all complete, bytes intact', { timeout: 40_000 }, async () => {
    const conn = await open()
    const size = 3 * MiB
    const n = 5
    const bodies = Array.from({ length: n }, () => randomBytes(size))
    for (let id = 1; id <= n; id++) await conn.begin(id, '/count-body.mjs', { contentLength: size })
    for (let off = 0; off < size; off += 65528) {
      for (let id = 1; id <= n; id++) await conn.stdin(id, bodies[id - 1]!.subarray(off, off + 65528))
    }
    for (let id = 1; id <= n; id++) await conn.endStdin(id)
    for (let id = 1; id <= n; id++) {
      const res = json(await conn.response(id))
      assert.equal(res.bytes, size)
      assert.equal(res.sha256, createHash('sha256').update(bodies[id - 1]!).digest('hex'), `request ${id} got its own bytes`)
    }
  })
})

describe('response bodies', () => {
  test('a 64 MiB download read by a slow reader: every byte in order, the handler slowed by backpressure, bounded server memory', { timeout: 60_000 }, async (t) => {
    const total = 64 * MiB
    const chunk = 64 * 1024
    const conn = await open()
    const progressFile = join(fpm.dir, 'marks.progress-dl')
    const produced = (): number => { try { return Number(readFileSync(progressFile, 'utf8')) } catch { return 0 } }
    const sampler = HAS_PROC ? new RssSampler(fpm.child.pid!) : null
    let received = 0
    let mismatch = -1
    let firstData: (() => void) | null = null
    const gotData = new Promise<void>((resolve) => { firstData = resolve })
    const onBody = (data: Buffer): void => {
      // chunk i: i as a big-endian uint32, then the byte (i * 7) & 0xff
      for (let k = 0; k < data.length && mismatch < 0; k++) {
        const pos = received + k
        const i = Math.floor(pos / chunk)
        const off = pos - i * chunk
        const want = off < 4 ? (i >>> (8 * (3 - off))) & 0xff : (i * 7) & 0xff
        if (data[k] !== want) mismatch = pos
      }
      received += data.length
      if (firstData !== null) { firstData(); firstData = null }
    }
    const started = performance.now()
    const res = await conn.begin(1, '/download.mjs?mib=64&tag=dl', { method: 'GET', onBody })
    await conn.endStdin(1)
    await gotData
    // The reader stalls: the server must stop the handler rather than buffer its output.
    conn.socket.pause()
    await sleep(1500)
    const producedWhilePaused = produced()
    const receivedWhilePaused = received
    // Then reads slowly: a 40 ms stall after every 2 MiB.
    let nextStall = received + 2 * MiB
    conn.socket.resume()
    conn.socket.on('data', () => {
      if (received >= nextStall && received < total) {
        nextStall = received + 2 * MiB
        conn.socket.pause()
        setTimeout(() => { conn.socket.resume() }, 40)
      }
    })
    await conn.response(1, 50_000)
    const seconds = (performance.now() - started) / 1000
    const growth = sampler?.stop() ?? null
    assert.equal(res.status, 200)
    assert.equal(mismatch, -1, `first wrong byte at offset ${mismatch}`)
    assert.equal(received, total, 'every byte arrived')
    assert.equal(produced(), total, 'the handler produced the whole body')
    const line = `64 MiB download in ${seconds.toFixed(2)} s; while the reader stalled 1.5 s after ${mb(receivedWhilePaused)}, ` +
      `the handler had produced ${mb(producedWhilePaused)}; server RSS ${sampler === null ? 'not measured (no /proc)' : `${mb(sampler.base)} -> peak ${mb(sampler.peak)}: growth ${mb(growth!)}`}`
    console.log(line)
    t.diagnostic(line)
    // Socket buffers on both ends hold a few MB; without backpressure the handler would have
    // produced all 64 MiB within the stall.
    assert.ok(producedWhilePaused - receivedWhilePaused < 24 * MiB,
      `the handler ran ${mb(producedWhilePaused - receivedWhilePaused)} ahead of a stalled reader`)
    if (growth !== null) assert.ok(growth < MAX_DOWNLOAD_GROWTH_BYTES, `server RSS grew by ${mb(growth)} during a 64 MiB download (limit ${mb(MAX_DOWNLOAD_GROWTH_BYTES)})`)
  })
})
