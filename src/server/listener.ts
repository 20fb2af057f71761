// One listening socket per pool (php's fpm_sockets.c): TCP (IPv4/IPv6, a bare port = every
// address), a unix socket (stale file replaced, listen.mode/owner/group applied) or a Windows named
// pipe. listen.allowed_clients filters TCP peers right after accept, as php does in the worker.
// Under the supervisor (master/supervisor.ts) the parent binds the socket (bindListenSocket) and the
// server process listens on the inherited file descriptor, as php's workers use the master's sockets.

import type { Server, Socket } from 'node:net'
import { lookup } from 'node:dns/promises'
import { getSystemErrorName } from 'node:util'
import { FpmError } from '../common/errors.ts'
import type { PoolConfig, ListenAddress } from '../config/types.ts'
import { Connection, type ServerContext } from './connection.ts'
import { MAX_CONNECTIONS } from './limits.ts'

// node:fs and node:net without their ESM namespaces (which load all of a module, every lazy part
// included): this code runs on pm.accept = threads threads too, see pool/script-resolver.ts.
const { chmodSync, chownSync, existsSync, lstatSync, readFileSync, unlinkSync } = process.getBuiltinModule('node:fs')
const net = process.getBuiltinModule('node:net')
const { createServer, connect, isIP } = net

export class Listener {
  readonly config: PoolConfig
  readonly #ctx: ServerContext
  readonly #server: Server
  readonly #allowed: Set<string> | null
  #unixPath: string | null = null
  /**
   * The open connections, each at its `listIndex`. An array, not a Map by socket: a Map filled and
   * emptied per connection is rebuilt in the old generation, and its old tables keep connections alive
   * through young collections (common/id-map.ts says more).
   */
  readonly #connections: Connection[] = []
  #drained: (() => void) | null = null

  constructor (config: PoolConfig, ctx: ServerContext) {
    this.config = config
    this.#ctx = ctx
    this.#allowed = allowedSet(config.listen.allowedClients)
    this.#server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => { this.#onConnection(socket) })
    this.#server.maxConnections = MAX_CONNECTIONS
  }

  /**
   * Binds and listens. Rejects with FPM_ERR_LISTEN_BIND and a message naming the pool and the address.
   * With `fd` (a socket bound by the supervisor and inherited), listens on it instead of binding: the
   * supervisor owns the address, so a unix socket file is neither replaced, chmod-ed nor removed here.
   */
  async listen (opts: { fd?: number } = {}): Promise<void> {
    const target = this.config.listen.target
    const fd = opts.fd ?? null
    if (target.kind === 'unix' && fd === null) await prepareUnixPath(this.config, target.path)
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { code?: string }): void => {
        reject(new FpmError('FPM_ERR_LISTEN_BIND',
          `[pool ${this.config.name}] unable to bind listening socket for address '${this.config.listen.address}': ${describeBindError(err)}`, { cause: err }))
      }
      this.#server.once('error', onError)
      const backlog = this.config.listen.backlog
      this.#server.listen(fd === null ? listenOptions(target, backlog) : { fd, backlog }, () => {
        this.#server.off('error', onError)
        this.#server.on('error', (err) => { this.#ctx.log.error({ err }, 'listener error') })
        resolve()
      })
    })
    if (target.kind === 'unix' && fd === null) {
      this.#unixPath = target.path
      applyUnixOwnership(this.config, target.path)
    }
  }

  /**
   * Listens on a listening socket's raw handle received over IPC (pm.accept = threads,
   * worker/thread-server.ts): the server takes it over as Node does for a server sent over IPC
   * (net.Server#_listen2 with a handle already set), so that this thread alone owns the descriptor.
   */
  async adopt (handle: object): Promise<void> {
    const server = this.#server as unknown as { _handle: object | null, _listen2: (address: null, port: number, addressType: number, backlog: number) => void }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${this.config.name}] cannot listen on '${this.config.listen.address}': ${err.message}`, { cause: err }))
      }
      this.#server.once('error', onError)
      this.#server.once('listening', () => {
        this.#server.off('error', onError)
        this.#server.on('error', (err) => { this.#ctx.log.error({ err }, 'listener error') })
        resolve()
      })
      server._handle = handle
      server._listen2(null, -1, -1, this.config.listen.backlog)
    })
  }

  /** The bound address, for logs ("127.0.0.1:9000", "/run/x.sock"). */
  get boundAddress (): string {
    const a = this.#server.address()
    if (a === null || a === '') return this.config.listen.address
    if (typeof a === 'string') return a
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  }

  /** Stops accepting; existing connections stay open (see destroyConnections). Removes the unix socket file. */
  close (): void {
    // server.close()'s callback waits for every connection, and web servers keep theirs open:
    // the caller decides when to drop them.
    this.#server.close()
    if (this.#unixPath !== null) {
      try { unlinkSync(this.#unixPath) } catch { /* already gone */ }
      this.#unixPath = null
    }
  }

  /** Drops every open connection: `graceful` ends them after what is queued is written, else destroys them now. */
  closeConnections (graceful: boolean): void {
    for (const connection of this.#connections.slice()) connection.drop(graceful)
  }

  get connectionCount (): number { return this.#connections.length }

  #onConnection (socket: Socket): void {
    if (this.#allowed !== null && socket.remoteAddress !== undefined && !isAllowed(this.#allowed, socket.remoteAddress)) {
      this.#ctx.log.error(`Connection disallowed: IP address '${socket.remoteAddress}' has been dropped.`)
      socket.destroy()
      return
    }
    const connection = new Connection(socket, this.#ctx, this.#onConnectionClosed)
    const connections = this.#connections
    connection.listIndex = connections.length
    connections.push(connection)
    this.#ctx.acceptBalance?.accepted()
  }

  /** When a connection's socket closed, after the connection's own handling (one function, not a closure per connection). */
  readonly #onConnectionClosed = (connection: Connection): void => {
    this.#ctx.acceptBalance?.closed()
    // The last one takes its place.
    const connections = this.#connections
    const last = connections.pop()!
    if (last !== connection) {
      connections[connection.listIndex] = last
      last.listIndex = connection.listIndex
    }
    connection.listIndex = -1
    if (connections.length === 0) this.#drained?.()
  }

  /**
   * Stops accepting, and closes each connection after its next response (Connection.closeAfterRequest;
   * an idle one after `idleMs`): resolves when none is left. When a pm.accept = threads thread leaves.
   */
  async drain (idleMs: number): Promise<void> {
    this.#server.close()
    if (this.#connections.length === 0) return
    await new Promise<void>((resolve) => {
      this.#drained = resolve
      for (const connection of this.#connections.slice()) connection.closeAfterRequest(idleMs)
    })
  }
}

/** php: a live server on the path is fatal ("Another FPM instance..."), a stale socket file is replaced. */
async function prepareUnixPath (config: PoolConfig, path: string): Promise<void> {
  if (!existsSync(path)) return
  if (!lstatSync(path).isSocket()) {
    throw new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${config.name}] unable to bind listening socket for address '${config.listen.address}': '${path}' exists and is not a socket`)
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => { resolve(false) })
  })
  if (alive) {
    throw new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${config.name}] Another FPM instance seems to already listen on ${path}`)
  }
  unlinkSync(path)
}

function applyUnixOwnership (config: PoolConfig, path: string): void {
  const { mode, owner, group } = config.listen
  chmodSync(path, mode)
  if (owner !== null || group !== null) {
    const uid = owner === null ? -1 : lookupId('/etc/passwd', owner)
    const gid = group === null ? -1 : lookupId('/etc/group', group)
    if (uid === null || gid === null) {
      throw new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${config.name}] cannot find ${uid === null ? `user '${owner ?? ''}'` : `group '${group ?? ''}'`} for listen.owner/listen.group`)
    }
    chownSync(path, uid, gid)
  }
}

/** A pool's socket bound by the supervisor, to be sent to server processes (or by a server process, for its threads). */
export interface BoundSocket {
  readonly fd: number
  /** The raw handle (child_process sends it as 'net.Native': a new descriptor in the receiver each time). */
  readonly handle: object
  /** Closes the supervisor's copy (a unix socket file is removed with it). */
  close (): void
}

/** What node:net's internal createServerHandle returns (the cluster module's way to bind without listening). */
interface RawServerHandle {
  readonly fd: number
  getsockname?: (out: object) => number
  close: () => void
}
type CreateServerHandle = (address: string | null, port: number, addressType: number, fd: undefined, flags: number) => RawServerHandle | number

/**
 * Binds (without listening, so this process never accepts) the pool's address, for a server process
 * to listen on. The first listen(2), in the server process, puts the socket in the listening state; it
 * stays there while this process keeps its copy, so between two server processes connections wait in
 * the kernel's backlog instead of being refused. Unix sockets get the same stale-file check and
 * listen.mode/owner/group as Listener.listen. Resolves null where fds cannot be passed (Windows, named
 * pipes, or a Node without net._createServerHandle): the server process then binds itself.
 */
export async function bindListenSocket (config: PoolConfig): Promise<BoundSocket | null> {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle
  const target = config.listen.target
  if (process.platform === 'win32' || target.kind === 'pipe' || typeof create !== 'function') return null
  const fail = (errno: number): never => {
    const code = getSystemErrorName(errno)
    throw new FpmError('FPM_ERR_LISTEN_BIND',
      `[pool ${config.name}] unable to bind listening socket for address '${config.listen.address}': ${describeBindError(Object.assign(new Error(code), { code }))}`)
  }
  let handle: RawServerHandle | number
  if (target.kind === 'unix') {
    await prepareUnixPath(config, target.path)
    handle = create(target.path, -1, -1, undefined, 0)
  } else if (target.host === null) {
    handle = create(null, target.port, 6, undefined, 0) // '::' (dual stack), else 0.0.0.0: as Listener.listen
  } else {
    let address = target.host
    let family = isIP(address)
    if (family === 0) {
      try {
        ({ address, family } = await lookup(target.host))
      } catch (err) {
        throw new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${config.name}] unable to bind listening socket for address '${config.listen.address}': ${(err as Error).message}`, { cause: err })
      }
    }
    handle = create(address, target.port, family, undefined, 0)
  }
  if (typeof handle === 'number') return fail(handle)
  const bound = handle
  // libuv defers EADDRINUSE from bind(2) to listen(2); getsockname reports it now.
  const err = bound.getsockname?.({}) ?? 0
  if (err < 0) { bound.close(); return fail(err) }
  if (target.kind === 'unix') {
    try {
      applyUnixOwnership(config, target.path)
    } catch (e) {
      bound.close()
      throw e
    }
  }
  let closed = false
  return {
    fd: bound.fd,
    handle: bound,
    close () {
      if (closed) return
      closed = true
      bound.close() // libuv removes the unix socket file it bound
    }
  }
}

function listenOptions (target: ListenAddress, backlog: number): { port?: number, host?: string, path?: string, backlog: number, ipv6Only?: boolean } {
  switch (target.kind) {
    case 'tcp':
      // host null: Node binds '::' (dual stack) when IPv6 is available, else 0.0.0.0: what php tries too.
      return target.host === null ? { port: target.port, backlog } : { port: target.port, host: target.host, backlog }
    case 'unix':
    case 'pipe':
      return { path: target.path, backlog }
  }
}

function describeBindError (err: Error & { code?: string }): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'Address already in use'
    case 'EACCES': return 'Permission denied'
    case 'EADDRNOTAVAIL': return 'Cannot assign requested address'
    case 'ENOENT': return 'No such file or directory'
    default: return err.message
  }
}

function allowedSet (list: readonly string[] | null): Set<string> | null {
  if (list === null) return null
  const set = new Set<string>()
  for (const entry of list) {
    if (isIP(entry) === 4) { set.add(entry); set.add(`::ffff:${entry}`) } else if (isIP(entry) === 6) set.add(entry.toLowerCase())
  }
  return set
}

function isAllowed (allowed: Set<string>, address: string): boolean {
  return allowed.has(address) || allowed.has(address.toLowerCase())
}

/** Numeric ids as is; names from /etc/passwd or /etc/group (Node has no getpwnam). */
function lookupId (file: string, name: string): number | null {
  if (/^[0-9]+$/.test(name)) return Number(name)
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const fields = line.split(':')
      if (fields[0] === name && fields[2] !== undefined) return Number(fields[2])
    }
  } catch { /* no such file (Windows) */ }
  return null
}
