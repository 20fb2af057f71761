// A socket's reads, handed to its reader without going through the socket's Readable stream: the
// server's connections (server/connection.ts) and the load generator's (bench/load-generator.ts).
//
// Each read of a socket goes through Readable#push: the stream's bookkeeping, the 'data' event, and a
// process.nextTick per read (maybeReadMore) that finds nothing to do on a flowing socket: 7-8% of a
// pm.accept = threads thread's CPU at 10k small requests/s (perf), 0.5-1.5 µs per read
// (bench/micro/reads.ts). Node's socket reader hands each read to the stream's push()
// (lib/internal/stream_base_commons.js, onStreamRead), so the socket's own push() gives a read straight
// to `onRead` while the stream flows and holds nothing. The order is kept: the end
// of input, and reads that arrive while the connection is paused or behind reads the stream still holds,
// go through the stream to the 'data' listener as before. A Node that stopped calling push() would only
// lose the shortcut, since the 'data' listener then gets every read.

import type { Socket } from 'node:net'

/** `onRead` must also be the socket's 'data' listener (the reads the stream keeps reach it there). */
export function takeReadsDirectly (socket: Socket, onRead: (chunk: Buffer) => void): void {
  const push = socket.push
  socket.push = function pushRead (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || !(chunk instanceof Buffer) || socket.readableFlowing !== true || socket.readableLength > 0) {
      return push.call(socket, chunk, encoding)
    }
    onRead(chunk)
    return true
  }
}
