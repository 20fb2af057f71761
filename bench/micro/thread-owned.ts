// What the hop between the main thread and a worker costs, end to end: the same hello handler, the
// same codec and light Response, served (a) by node-fpm as it runs by default (the main thread owns
// the connections and hands requests to worker threads), (b) by node-fpm with pm.accept = threads
// (each thread accepts and serves its connections, README "Threads that accept their own
// connections"), and (c) by a bare prototype of (b): threads that only parse, call the handler and
// frame the response, nothing else. All on a unix socket, same thread count. Measured two ways:
// - direct: node-fpm bench's load generator, 16 connections, kept and a new one per request;
// - `--nginx`: through a real nginx with wrk (bench/nginx-front.ts, bench/wrk.ts), upstream
//   keepalive and not, beside a plain node:http server behind proxy_pass (bench/apps/node-http.ts),
//   rounds in alternating order.
//
// The prototype is a measurement, not a server: one request at a time per connection, no status,
// no timeouts, no recycling. Its process's main thread binds the socket, hands the descriptor to
// its threads and then blocks for good (Atomics.wait), so that only the threads accept; the
// threads all listen on that one descriptor, which the first thread to end would close for all
// (node-fpm gives each thread a copy of its own: worker/thread-server.ts).
//
//   node bench/micro/thread-owned.ts [--threads 2] [--connections 16] [--duration 4] [--nginx] [--rounds 2]

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { runLoad } from '../../src/bench/load-generator.ts'
import { FCGI_KEEP_CONN, RecordParser, RecordType, decodeParamsText, paramsText, parseBeginRequest } from '../../src/fastcgi/index.ts'
import { frameStdout } from '../../src/server/responder.ts'
import { findNginx, startFront } from '../nginx-front.ts'
import { startNodeFpm } from '../node-fpm-process.ts'
import { findWrk, runWrk } from '../wrk.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const APPS = path.join(ROOT, 'bench/apps')
const SCRIPT = path.join(APPS, 'hello.mjs')
const SELF = fileURLToPath(import.meta.url)

interface OwnedData { fd: number, script: string }

/** A worker thread of the prototype: accepts on `fd`, answers each request itself. */
async function serveOwned ({ fd, script }: OwnedData): Promise<void> {
  const { installRequestGlobals } = await import('../../src/worker/light-request.ts')
  const { installResponseGlobal, takeLightResponse } = await import('../../src/worker/light-response.ts')
  const { serializeLightHead, lightBodyText } = await import('../../src/worker/web-response.ts')
  const { cgiRequestParts, createRequest } = await import('../../src/worker/cgi-request.ts')
  const { buildEnv } = await import('../../src/worker/env.ts')
  installRequestGlobals()
  installResponseGlobal()
  const app = (await import(script) as { default: { fetch: (r: Request, env: unknown, ctx: unknown) => Response } }).default
  const server = net.createServer((socket) => {
    let keepConn = true
    let chunks: Buffer[] = []
    const parser = new RecordParser({
      onRecord (type, id, content) {
        if (type === RecordType.BEGIN_REQUEST) {
          keepConn = (parseBeginRequest(content).flags & FCGI_KEEP_CONN) !== 0
          chunks = []
        } else if (type === RecordType.PARAMS && content.length > 0) {
          chunks.push(Buffer.from(content)) // the parser's views are only valid during the call
        } else if (type === RecordType.STDIN && content.length === 0) {
          const params: string[] = []
          decodeParamsText(paramsText(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)), params)
          const request = createRequest(cgiRequestParts(params), null, new AbortController())
          const parts = takeLightResponse(app.fetch(request!, buildEnv(params, {}), {}), false)!
          for (const b of frameStdout(id, serializeLightHead(parts), lightBodyText(parts.body), true, 0)) socket.write(b)
          if (!keepConn) socket.end()
        }
      }
    })
    socket.on('data', (chunk: Buffer) => { parser.push(chunk) })
    socket.on('error', () => {})
  })
  server.listen({ fd }, () => { parentPort?.postMessage('listening') })
}

/** The prototype's process: binds `socketPath`, starts `threads` threads on its descriptor, then blocks. */
function serveProcess (socketPath: string, threads: number): void {
  const bound = net.createServer()
  bound.listen(socketPath, () => {
    const fd = (bound as unknown as { _handle: { fd: number } })._handle.fd
    let listening = 0
    for (let i = 0; i < threads; i++) {
      const w = new Worker(SELF, { workerData: { fd, script: SCRIPT } satisfies OwnedData })
      w.on('message', () => {
        // From here on this thread never runs its event loop again, so it never accepts.
        if (++listening === threads) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
      })
    }
  })
}

function canConnect (socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

async function waitForSocket (socketPath: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await canConnect(socketPath)) return
    if (child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`nothing listens on ${socketPath}`)
}

interface Target { name: string, protocol: 'fastcgi' | 'http', socket: string, uri: string }

async function direct (targets: Target[], connections: number, duration: number): Promise<void> {
  for (const keepConn of [true, false]) {
    for (const t of targets.filter((t) => t.protocol === 'fastcgi')) {
      const r = await runLoad({ address: t.socket, uri: t.uri, script: path.join(APPS, t.uri), connections, duration, warmup: 1, keepConn, expectBody: 'Hello, World!' })
      console.log(`direct  ${keepConn ? 'kept conns' : 'new conn  '}  ${t.name.padEnd(14)} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${r.latency.p99} ms  errors ${r.errors.total}`)
    }
  }
}

async function throughNginx (targets: Target[], connections: number, duration: number, rounds: number): Promise<void> {
  const nginx = findNginx()
  const wrk = findWrk()
  if (nginx === null || wrk === null) throw new Error('--nginx needs nginx and wrk')
  for (const keepalive of [true, false]) {
    for (let r = 0; r < rounds; r++) {
      for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
        const front = await startFront(nginx, { protocol: t.protocol, socket: t.socket, keepalive, documentRoot: APPS, workerProcesses: 1, keepaliveConnections: 16 })
        try {
          const url = front.url + t.uri
          await runWrk(wrk, { url, threads: 2, connections, durationS: 1, timeoutS: 2 })
          const { result } = await runWrk(wrk, { url, threads: 2, connections, durationS: duration, timeoutS: 2 })
          console.log(`nginx   ${keepalive ? 'keepalive ' : 'new conn  '}  ${t.name.padEnd(14)} ${result.rps.toFixed(0).padStart(7)} req/s  p99 ${result.latency.p99} ms  errors ${result.errors.total}`)
        } finally {
          await front.stop()
        }
      }
    }
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '2' },
      connections: { type: 'string', default: '16' },
      duration: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '2' },
      nginx: { type: 'boolean', default: false }
    }
  })
  const threads = Number(values.threads)
  const connections = Number(values.connections)
  const duration = Number(values.duration)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thread-owned-'))
  const ownedSocket = path.join(dir, 'owned.sock')
  const httpSocket = path.join(dir, 'http.sock')
  const owned = spawn(process.execPath, [SELF, '--serve', ownedSocket, String(threads)], { stdio: ['ignore', 'inherit', 'inherit'] })
  const http = values.nginx ? spawn(process.execPath, [path.join(APPS, 'node-http.ts'), httpSocket], { stdio: 'ignore' }) : null
  const fpm = await startNodeFpm({ workers: threads })
  const fpmThreads = await startNodeFpm({ workers: threads, poolDirectives: 'pm.accept = threads' })
  try {
    await waitForSocket(ownedSocket, owned)
    if (http !== null) await waitForSocket(httpSocket, http)
    const targets: Target[] = [
      { name: `node-fpm (${threads})`, protocol: 'fastcgi', socket: fpm.address, uri: '/hello.mjs' },
      { name: `thread-owned (${threads})`, protocol: 'fastcgi', socket: ownedSocket, uri: '/hello.mjs' },
      { name: `accept=threads (${threads})`, protocol: 'fastcgi', socket: fpmThreads.address, uri: '/hello.mjs' }
    ]
    if (values.nginx) {
      targets.push({ name: 'node:http', protocol: 'http', socket: httpSocket, uri: '/hello' })
      await throughNginx(targets, connections, duration, Number(values.rounds))
    } else {
      await direct(targets, connections, duration)
    }
  } finally {
    owned.kill('SIGKILL') // its main thread is blocked: no signal handler runs there
    http?.kill()
    await fpm.stop()
    await fpmThreads.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (!isMainThread) {
  serveOwned(workerData as OwnedData).catch((err: unknown) => { console.error(err); process.exit(1) })
} else if (process.argv[2] === '--serve') {
  serveProcess(process.argv[3]!, Number(process.argv[4]))
} else {
  main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
}
