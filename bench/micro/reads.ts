// What a socket read costs the server through the socket's Readable stream ('data') against the
// shortcut of src/common/direct-reads.ts: a client and a server in one process ping-pong a 600-byte
// request and a 64-byte answer over a unix socket, one read per request as at a moderate load. The two
// ways alternate in rounds (this machine's speed drifts); the table gives the medians of the process's
// CPU per round trip (both ends) and how many rounds the shortcut won.
//
//   node_modules/.bin/node bench/micro/reads.ts [--rounds=12] [--requests=30000]

import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { takeReadsDirectly } from '../../src/common/direct-reads.ts'

const arg = (name: string, fallback: number): number => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}
const ROUNDS = arg('rounds', 12)
const REQUESTS = arg('requests', 30_000)

type Way = 'stream' | 'direct'
const dir = mkdtempSync(join(tmpdir(), 'node-fpm-reads-'))
const path = join(dir, 'reads.sock')
const answer = Buffer.alloc(64, 1)
let way: Way = 'stream'
const server = createServer((socket: Socket) => {
  const onRead = (): void => { socket.write(answer) }
  socket.on('data', onRead)
  if (way === 'direct') takeReadsDirectly(socket, onRead)
})
await new Promise<void>((resolve) => server.listen(path, resolve))

const request = Buffer.alloc(600, 2)
async function round (w: Way, n: number): Promise<number> {
  way = w
  const client = connect(path)
  await new Promise((resolve) => client.once('connect', resolve))
  const start = process.cpuUsage()
  let left = n
  await new Promise<void>((resolve) => {
    client.on('data', () => { if (--left === 0) resolve(); else client.write(request) })
    client.write(request)
  })
  const used = process.cpuUsage(start)
  client.destroy()
  return (used.user + used.system) / n
}

for (const w of ['stream', 'direct', 'stream', 'direct'] as const) await round(w, REQUESTS / 2) // JIT warm-up
const us: Record<Way, number[]> = { stream: [], direct: [] }
let directWon = 0
for (let i = 0; i < ROUNDS; i++) {
  const order: Way[] = i % 2 === 0 ? ['stream', 'direct'] : ['direct', 'stream']
  const got: Partial<Record<Way, number>> = {}
  for (const w of order) { got[w] = await round(w, REQUESTS); us[w].push(got[w]) }
  if (got.direct! < got.stream!) directWon++
}
server.close()
rmSync(dir, { recursive: true, force: true })

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const s = median(us.stream)
const d = median(us.direct)
console.log(`CPU per round trip (both ends), medians of ${ROUNDS} rounds of ${REQUESTS}:`)
console.log(`  through the stream ('data')   ${s.toFixed(2)} µs`)
console.log(`  direct (takeReadsDirectly)    ${d.toFixed(2)} µs   ${(s - d).toFixed(2)} µs less; faster in ${directWon} of ${ROUNDS} rounds`)
