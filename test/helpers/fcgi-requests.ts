// FastCGI requests as tests send them to a spawned server: one script on its own connection, or
// several requests written in ONE socket write on one connection, so they reach the pool in the same
// tick (how the dispatch tests get requests prefetched onto a busy thread).

import net from 'node:net'
import { join } from 'node:path'
import { FcgiConnection, buildCgiParams, parseCgiResponse } from '../../src/client/fcgi-client.ts'
import type { ParsedCgiResponse } from '../../src/client/fcgi-client.ts'
import {
  FCGI_KEEP_CONN, RecordParser, RecordType, Role, buildBeginRequest, buildStreamEnd, encodeParams, frameChunks
} from '../../src/fastcgi/index.ts'

/** GET `/script?query` with SCRIPT_FILENAME in `appsDir`, on a connection of its own. */
export async function getScript (port: number, appsDir: string, script: string, query = ''): Promise<{ status: number, body: string }> {
  const conn = await FcgiConnection.connect(`127.0.0.1:${port}`)
  try {
    const res = await conn.request({ params: buildCgiParams({ uri: `/${script}?${query}`, scriptFilename: join(appsDir, script) }) }, { keepConn: false })
    return { status: res.status, body: res.body.toString() }
  } finally {
    await conn.close()
  }
}

export interface RawBatchConnection {
  /** Writes GET requests (ids 1, 2, ...) for [script, query] pairs in one write. */
  send (requests: ReadonlyArray<readonly [string, string]>): void
  /** The responses of the batch, in id order, once all ended or after `timeoutMs` (missing ones empty). */
  responses (timeoutMs: number): Promise<ParsedCgiResponse[]>
  close (): void
}

export async function connectRawBatch (port: number, appsDir: string): Promise<RawBatchConnection> {
  const stdout = new Map<number, Buffer[]>()
  const ended = new Set<number>()
  let count = 0
  const socket = net.connect(port, '127.0.0.1')
  const parser = new RecordParser({
    onRecord (type, requestId, content) {
      if (type === RecordType.STDOUT) stdout.set(requestId, [...(stdout.get(requestId) ?? []), Buffer.from(content)])
      if (type === RecordType.END_REQUEST) ended.add(requestId)
    }
  })
  socket.on('data', (chunk: Buffer) => { parser.push(chunk) })
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  return {
    send (requests) {
      count = requests.length
      socket.write(Buffer.concat(requests.flatMap(([script, query], i) => {
        const id = i + 1
        const params = encodeParams(Object.entries(buildCgiParams({ uri: query === '' ? `/${script}` : `/${script}?${query}`, scriptFilename: join(appsDir, script) })))
        return [buildBeginRequest(id, Role.RESPONDER, FCGI_KEEP_CONN), ...frameChunks(RecordType.PARAMS, id, params),
          buildStreamEnd(RecordType.PARAMS, id), buildStreamEnd(RecordType.STDIN, id)]
      })))
    },
    async responses (timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (ended.size < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      return Array.from({ length: count }, (_, i) => parseCgiResponse(Buffer.concat(stdout.get(i + 1) ?? [])))
    },
    close () { socket.destroy() }
  }
}
