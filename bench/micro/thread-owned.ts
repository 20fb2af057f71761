// What the hop between the main thread and a worker costs, end to end: the same hello handler, the
// same codec and light Response, served (a) by node-fpm (the main thread owns the connections and
// hands requests to worker threads) and (b) by a prototype in which each worker thread accepts on
// its own SO_REUSEPORT socket and answers on the connection itself, as php-fpm's processes do. Both
// on TCP 127.0.0.1 (reusePort: Linux, Node >= 22.12), same thread count, same load (node-fpm bench's
// generator in this process, whose main thread the prototype leaves idle).
//
// The prototype is a measurement, not a server: one request at a time per connection, no status,
// no timeouts, no recycling, and a killed thread would take its connections with it (php-fpm's
// behaviour: the web server answers 502), which is why node-fpm does not work this way.
//
//   node bench/micro/thread-owned.ts [--threads 2] [--connections 16] [--duration 4]

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, workerData } from 'node:worker_threads'
import { runLoad } from '../../src/bench/load-generator.ts'
import { FCGI_KEEP_CONN, RecordParser, RecordType, decodeParamsText, paramsText, parseBeginRequest } from '../../src/fastcgi/index.ts'
import { frameStdout } from '../../src/server/responder.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = path.join(ROOT, 'bench/apps/hello.mjs')

interface OwnedData { port: number, script: string }

async function serveOwned ({ port, script }: OwnedData): Promise<void> {
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
          chunks.push(content)
        } else if (type === RecordType.STDIN && content.length === 0) {
          const params: string[] = []
          decodeParamsText(paramsText(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)), params)
          const request = createRequest(cgiRequestParts(params), null, new AbortController().signal)
          const parts = takeLightResponse(app.fetch(request!, buildEnv(params, {}), {}), false)!
          for (const b of frameStdout(id, serializeLightHead(parts), lightBodyText(parts.body), true, 0)) socket.write(b)
          if (!keepConn) socket.destroy()
        }
      }
    })
    socket.on('data', (chunk: Buffer) => { parser.push(chunk) })
    socket.on('error', () => {})
  })
  server.listen({ port, host: '127.0.0.1', reusePort: true })
}

async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => { resolve() }))
  return port
}

async function waitForPort (port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.on('error', () => { resolve(false) })
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`)
}

async function measure (name: string, port: number, connections: number, duration: number): Promise<void> {
  for (const keepConn of [true, false]) {
    const r = await runLoad({ address: `127.0.0.1:${port}`, uri: '/hello.mjs', script: SCRIPT, connections, duration, warmup: 1, keepConn, expectBody: 'Hello, World!' })
    console.log(`${name.padEnd(22)} ${keepConn ? 'kept conns' : 'new conn  '}  ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${r.latency.p99} ms  errors ${r.errors.total}`)
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, connections: { type: 'string', default: '16' }, duration: { type: 'string', default: '4' } } })
  const threads = Number(values.threads)
  const connections = Number(values.connections)
  const duration = Number(values.duration)

  const dir = mkdtempSync(path.join(os.tmpdir(), 'thread-owned-'))
  const fpmPort = await freePort()
  const conf = path.join(dir, 'node-fpm.conf')
  writeFileSync(conf, `[global]\nerror_log = ${path.join(dir, 'node-fpm.log')}\n\n[bench]\nlisten = 127.0.0.1:${fpmPort}\npm = static\npm.max_children = ${threads}\nroot = ${path.join(ROOT, 'bench/apps')}\n`)
  const fpm = spawn(process.execPath, [path.join(ROOT, 'bin/node-fpm.js'), '-y', conf, '--no-supervisor'], { stdio: 'ignore' })
  try {
    await waitForPort(fpmPort)
    await new Promise((resolve) => setTimeout(resolve, 500)) // its threads boot after the listener
    await measure(`node-fpm (${threads} threads)`, fpmPort, connections, duration)
  } finally {
    fpm.kill('SIGTERM')
  }

  const ownedPort = await freePort()
  const workers = Array.from({ length: threads }, () => new Worker(fileURLToPath(import.meta.url), { workerData: { port: ownedPort, script: SCRIPT } satisfies OwnedData }))
  try {
    await waitForPort(ownedPort)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await measure(`thread-owned (${threads})`, ownedPort, connections, duration)
  } finally {
    for (const w of workers) await w.terminate()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (isMainThread) {
  main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
} else {
  serveOwned(workerData as OwnedData).catch((err: unknown) => { console.error(err); process.exit(1) })
}
