// request.body_timeout (src/server/exchange.ts), over raw FastCGI on real TCP: a web server that
// sends half a body and stalls gets 408 within the bound, whether the body was being buffered or
// streamed to a handler (whose read then fails with FPM_ERR_BODY_TIMEOUT); the connection is
// closed (its body stream is broken) and the server keeps serving. A slow but steady body is not
// cut: the timeout is between two reads, as nginx's client_body_timeout.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildCgiParams, fcgiRequest, parseCgiResponse } from '../../src/client/fcgi-client.ts'
import {
  FCGI_KEEP_CONN, RecordParser, RecordType, Role, buildBeginRequest, buildStreamEnd, encodeParams, frameChunks, parseEndRequest
} from '../../src/fastcgi/index.ts'
import { REPO, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/body-apps')
const INFO = 30

const CONFIG = `[global]
log_level = debug

[www]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{ROOT}}
request.body_buffer_size = 1K
request.body_timeout = 1s
`

/** A raw FastCGI connection: what it received for request 1, and when the server closed it. */
class RawConnection {
  readonly socket: net.Socket
  readonly stdout: Buffer[] = []
  appStatus: number | null = null
  endedAtMs = 0
  closedAtMs = 0
  readonly #parser: RecordParser

  constructor (port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.#parser = new RecordParser({
      onRecord: (type, _id, content) => {
        if (type === RecordType.STDOUT) this.stdout.push(Buffer.from(content))
        if (type === RecordType.END_REQUEST) {
          this.appStatus = parseEndRequest(content).appStatus
          this.endedAtMs = performance.now()
        }
      }
    })
    this.socket.on('data', (chunk: Buffer) => { this.#parser.push(chunk) })
    this.socket.on('error', () => {})
    this.socket.on('close', () => { this.closedAtMs = performance.now() })
  }

  async connected (): Promise<void> {
    await new Promise<void>((resolve) => this.socket.once('connect', resolve))
  }

  /** BEGIN_REQUEST and the params of a POST of `length` bytes to `script`. */
  begin (script: string, length: number): void {
    const params = encodeParams(Object.entries(buildCgiParams({ uri: `/${script}`, method: 'POST', scriptFilename: join(APPS, script), bodyLength: length })))
    this.socket.write(Buffer.concat([buildBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN), ...frameChunks(RecordType.PARAMS, 1, params), buildStreamEnd(RecordType.PARAMS, 1)]))
  }

  body (bytes: number): void {
    this.socket.write(Buffer.concat(frameChunks(RecordType.STDIN, 1, Buffer.alloc(bytes, 0x61))))
  }

  end (): void {
    this.socket.write(buildStreamEnd(RecordType.STDIN, 1))
  }

  async response (timeoutMs: number): Promise<{ status: number, body: string }> {
    const deadline = performance.now() + timeoutMs
    while (this.appStatus === null) {
      if (performance.now() > deadline) throw new Error('no END_REQUEST in time')
      await sleep(10)
    }
    const res = parseCgiResponse(Buffer.concat(this.stdout))
    return { status: res.status, body: res.body.toString() }
  }

  async closed (timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (this.closedAtMs === 0) {
      if (performance.now() > deadline) throw new Error('the server did not close the connection')
      await sleep(10)
    }
  }
}

async function serves (fpm: FpmHandle): Promise<void> {
  const body = Buffer.from('hello')
  const params = buildCgiParams({ uri: '/read-body.mjs', method: 'POST', scriptFilename: join(APPS, 'read-body.mjs'), bodyLength: body.length })
  const res = await fcgiRequest(`127.0.0.1:${fpm.port}`, { params, body }, { timeoutMs: 5000 })
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'read 5')
}

describe('request.body_timeout = 1s', () => {
  let fpm: FpmHandle
  before(async () => { fpm = await startFpm(CONFIG, { root: APPS }) })
  after(async () => { await fpm.stop() })

  for (const [kind, length, sent] of [['buffered', 1000, 500], ['streamed to the handler', 4000, 2000]] as const) {
    test(`half of a ${kind} body, then nothing: 408 within the bound, the connection closed, the server serves on`, { timeout: 15_000 }, async () => {
      const conn = new RawConnection(fpm.port)
      await conn.connected()
      conn.begin('read-body.mjs', length)
      conn.body(sent)
      const stalledAt = performance.now()
      const res = await conn.response(5000)
      const ms = conn.endedAtMs - stalledAt
      assert.equal(res.status, 408)
      assert.equal(res.body, 'Request Timeout\n')
      assert.equal(conn.appStatus, 0)
      assert.ok(ms >= 950 && ms < 2500, `408 after ${ms.toFixed(0)} ms`)
      await conn.closed(3000)
      const line = await fpm.waitForLog((l) => l.msg === `request body stalled: no bytes for request.body_timeout (1s) after ${sent} of ${length} bytes: 408, closing the connection`)
      assert.equal(line.level, INFO)
      assert.equal(line.pool, 'www')
      assert.equal(line.uri, '/read-body.mjs')
      if (kind !== 'buffered') {
        // the handler was reading the body: its read failed with the timeout's code
        await fpm.waitForLog((l) => /said: body failed: FPM_ERR_BODY_TIMEOUT request body failed: the web server sent no bytes of it for request\.body_timeout$/.test(l.msg))
        const failed = await fpm.waitForLog((l) => /^handler failed: /.test(l.msg))
        assert.equal(failed.level, INFO, 'a stalled client is not a handler error')
      }
      conn.socket.destroy()
      await serves(fpm)
      assert.equal(fpm.logs.filter((l) => l.level >= 40).length, 0, fpm.rawStderr())
    })
  }

  test('a slow but steady body (500 bytes every 300 ms, 2.4 s in all) is not cut', { timeout: 15_000 }, async () => {
    const conn = new RawConnection(fpm.port)
    await conn.connected()
    conn.begin('read-body.mjs', 4000)
    for (let i = 0; i < 8; i++) {
      await sleep(300)
      conn.body(500)
    }
    conn.end()
    const res = await conn.response(5000)
    assert.equal(res.status, 200)
    assert.equal(res.body, 'read 4000')
    conn.socket.destroy()
  })
})
