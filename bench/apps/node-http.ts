// The baseline of bench/nginx.ts: what a Node user runs instead of node-fpm, a plain node:http
// server (one process, no framework) behind nginx's proxy_pass. Same bodies, byte for byte, and
// the same Content-Type as the node-fpm handlers hello.mjs and json.mjs:
//   GET /hello  ->  Hello, World!                           (text/plain;charset=UTF-8, as new Response(string))
//   GET /json   ->  the 1,511-byte JSON page, built per request   (application/json)
//
//   node bench/apps/node-http.ts SOCKET_PATH
//
// Listens on a unix socket (as the FastCGI servers of the bench do) and exits on SIGTERM/SIGINT.
// It lives beside its twins but only listens when run as the main module: node-fpm, which
// serves bench/apps, would import it without side effects.

import http from 'node:http'
import { rmSync } from 'node:fs'

const HELLO = Buffer.from('Hello, World!')

function jsonPage (): string {
  const items = []
  for (let i = 1; i <= 17; i++) {
    items.push({ id: i, name: `item-${i}`, price: i * 250 + 99, qty: (i * 7) % 13, active: i % 3 !== 0, tags: ['tag' + (i % 4), 'group' + (i % 5)] })
  }
  return JSON.stringify({ status: 'ok', page: 1, total: 17, items })
}

export function handle (req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/hello') {
    res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8', 'content-length': HELLO.length })
    res.end(HELLO)
  } else if (req.url === '/json') {
    const body = Buffer.from(jsonPage())
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  }
}

if (import.meta.main) {
  const socket = process.argv[2]
  if (socket === undefined || socket === '') {
    process.stderr.write('usage: node bench/apps/node-http.ts SOCKET_PATH\n')
    process.exit(64)
  }
  rmSync(socket, { force: true })
  const server = http.createServer(handle)
  // Longer than nginx keeps an idle upstream connection (keepalive_timeout 60s), so that Node
  // never closes one that nginx is about to reuse.
  server.keepAliveTimeout = 65_000
  server.listen(socket, () => { process.stdout.write(`listening on ${socket}\n`) })
  const stop = (): void => { server.close(); server.closeAllConnections(); process.exit(0) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
