// The listener's list of open connections (an array where the last one takes the place of one that
// closes), over real unix sockets: closes in any order leave exactly the open ones, and a drain
// reaches each of them. No request is sent, so the pool behind is never asked anything.

import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../../../src/config/load.ts'
import type { PoolConfig } from '../../../src/config/types.ts'
import { silentLogger } from '../../../src/log/logger.ts'
import { ScriptResolver } from '../../../src/pool/script-resolver.ts'
import type { Pool } from '../../../src/pool/pool.ts'
import type { ServerContext } from '../../../src/server/connection.ts'
import { Listener } from '../../../src/server/listener.ts'

const dir = mkdtempSync(join(tmpdir(), 'node-fpm-listener-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

function poolConfig (): PoolConfig {
  writeFileSync(join(dir, 'fpm.conf'), ['[www]', `listen = ${dir}/www.sock`, 'pm = static', 'pm.max_children = 1', `root = ${dir}`].join('\n') + '\n')
  const r = loadConfig({ cwd: dir, configFile: 'fpm.conf', env: {} })
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'))
  return r.config.pools[0]!
}

async function until (what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

interface Client { socket: Socket, closed: boolean }

async function open (path: string): Promise<Client> {
  const socket = connect(path)
  const client: Client = { socket, closed: false }
  socket.on('close', () => { client.closed = true })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  return client
}

describe('Listener: open connections', () => {
  it('keeps exactly the open ones whatever order they close in, and a drain closes each of them', async () => {
    const config = poolConfig()
    const ctx: ServerContext = {
      pool: { config } as unknown as Pool, // asked nothing: no request is sent
      resolver: new ScriptResolver(config),
      log: silentLogger(),
      statusPage: async () => { throw new Error('no status page here') }
    }
    const listener = new Listener(config, ctx)
    await listener.listen()
    try {
      const path = join(dir, 'www.sock')
      const clients: Client[] = []
      for (let i = 0; i < 6; i++) clients.push(await open(path))
      await until('6 connections', () => listener.connectionCount === 6)

      // One at a time: the first (the last one takes its place), then that moved one, then one in
      // the middle and the one moved there, then the last.
      let open_ = 6
      const closeOne = async (i: number): Promise<void> => {
        clients[i]!.socket.destroy()
        open_--
        await until(`${open_} connections after closing #${i}`, () => listener.connectionCount === open_)
      }
      for (const i of [0, 5, 2, 4]) await closeOne(i)
      clients.push(await open(path), await open(path))
      open_ += 2
      await until(`${open_} connections`, () => listener.connectionCount === open_)
      await closeOne(7)
      await closeOne(1)

      // The drain tells every connection still listed to close once idle: the two left (#3, #6) must go.
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        listener.drain(20),
        new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('the drain did not end: a connection was not told to close')) }, 5000) })
      ]).finally(() => { clearTimeout(timer) })
      assert.equal(listener.connectionCount, 0)
      await until('the clients see their connections closed', () => clients.every((c) => c.closed))
    } finally {
      listener.close()
    }
  })
})
