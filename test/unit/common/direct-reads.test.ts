// A connection's reads taken straight from the socket (src/common/direct-reads.ts), over real unix
// sockets: every byte arrives once and in order whether the server pauses or not, nothing arrives while
// it is paused, the end of input still ends the stream, and on this Node the shortcut is really taken
// (a Node that stopped calling the stream's push() would fail the count, not the bytes).

import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { takeReadsDirectly } from '../../../src/common/direct-reads.ts'

const dir = mkdtempSync(join(tmpdir(), 'node-fpm-direct-reads-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

interface Received {
  bytes: Buffer
  direct: number
  viaStream: number
  readsWhilePaused: number
  ended: boolean
}

/**
 * Serves one connection: the server pauses for `pauseMs` after every `pauseEveryBytes` it reads (0:
 * never), while the client writes `chunks` in bursts; resolves when the client's end has arrived.
 */
async function exchange (name: string, chunks: Buffer[], pauseEveryBytes: number, pauseMs: number): Promise<Received> {
  const path = join(dir, `${name}.sock`)
  let done!: (r: Received) => void
  const result = new Promise<Received>((resolve) => { done = resolve })
  const server = createServer((socket: Socket) => {
    const parts: Buffer[] = []
    const r: Received = { bytes: Buffer.alloc(0), direct: 0, viaStream: 0, readsWhilePaused: 0, ended: false }
    let total = 0
    let nextPauseAt = pauseEveryBytes
    const take = (chunk: Buffer): void => {
      if (socket.isPaused()) r.readsWhilePaused++
      parts.push(Buffer.from(chunk))
      total += chunk.length
      if (pauseEveryBytes > 0 && total >= nextPauseAt) {
        nextPauseAt = total + pauseEveryBytes
        socket.pause()
        setTimeout(() => { socket.resume() }, pauseMs)
      }
    }
    socket.on('data', (chunk: Buffer) => { r.viaStream++; take(chunk) })
    takeReadsDirectly(socket, (chunk) => { r.direct++; take(chunk) })
    socket.on('end', () => {
      r.ended = true
      r.bytes = Buffer.concat(parts)
      socket.end()
      done(r)
    })
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  try {
    const client = connect(path)
    await new Promise<void>((resolve, reject) => { client.once('connect', resolve); client.once('error', reject) })
    for (let i = 0; i < chunks.length; i++) {
      if (!client.write(chunks[i]!)) await new Promise((resolve) => client.once('drain', resolve))
      if (i % 8 === 7) await sleep(1) // separate reads on the server's side, not one coalesced buffer
    }
    client.end()
    return await result
  } finally {
    server.close()
  }
}

function numberedChunks (count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const b = Buffer.alloc(size, i & 0xff)
    b.writeUInt32BE(i, 0)
    return b
  })
}

describe('takeReadsDirectly', () => {
  it('delivers every read once and in order without a pause, by the shortcut, and the end still ends', async () => {
    const chunks = numberedChunks(200, 700)
    const r = await exchange('flowing', chunks, 0, 0)
    assert.ok(r.ended)
    assert.ok(r.bytes.equals(Buffer.concat(chunks)), 'the bytes sent, in order')
    assert.ok(r.direct > 0, `no read took the shortcut (${r.viaStream} through the stream): does Node still call the stream's push()?`)
    assert.equal(r.viaStream, 0, 'a flowing socket that holds nothing sends no read through the stream')
  })

  it('pausing holds reads back and resuming delivers them in order, through the stream first', async () => {
    const chunks = numberedChunks(600, 1500)
    const r = await exchange('paused', chunks, 64 * 1024, 20)
    assert.ok(r.ended)
    assert.ok(r.bytes.equals(Buffer.concat(chunks)), 'the bytes sent, in order, across pauses')
    assert.equal(r.readsWhilePaused, 0, 'no read was delivered while the socket was paused')
    assert.ok(r.viaStream > 0, 'reads that came while paused went through the stream')
    assert.ok(r.direct > 0, 'and the shortcut was taken again after the stream had given them out')
  })
})
