// The server process's end of the supervisor's IPC channel (master/supervisor.ts is the other end):
// the start message (the configuration) and the sockets it receives, the "ready" it sends back, and
// the supervisor's death. Imported by the server process's entry (master/server-main.ts) and, for
// the message types, by the supervisor.

import type { FpmConfig } from '../config/types.ts'

/**
 * What the supervisor sends a server process it started: everything it needs to serve. The
 * sockets follow, a SocketMessage each, in the order of `sockets`.
 */
export interface StartMessage {
  readonly type: 'start'
  readonly config: FpmConfig
  /**
   * The sockets that follow: pool name (or statusListenKey) → how many descriptors of it, the
   * listening one and, for a pm.accept = threads pool, one for each thread the pool starts with,
   * which takes it as its own (without one a thread has a process copy one for it:
   * worker/socket-copy.ts). Pools without one bind themselves (Windows, named pipes).
   */
  readonly sockets: ReadonlyArray<readonly [string, number]>
  readonly forceStderr: boolean
  readonly supervisorPid: number
  readonly stopTimeoutMs: number
}

/** A descriptor of a socket (the message's handle), after the StartMessage. */
export interface SocketMessage {
  readonly type: 'socket'
  readonly key: string
}

/** What the server process has once the start message and its sockets arrived (receiveStart). */
export interface ServerStart extends StartMessage {
  /** pool name (or statusListenKey) → the descriptor to listen on. */
  readonly listenFds: Readonly<Record<string, number>>
  /** pm.accept = threads: pool name → a descriptor for each initial thread. */
  readonly threadFds: Readonly<Record<string, readonly number[]>>
}

export type ServerMessage = { readonly type: 'ready' }

/**
 * The descriptors received: never closed here. The server's listeners and threads open their own
 * handles on these descriptors and close those (a raw handle cannot be given up without closing its
 * descriptor); referenced so that no collection closes one under them.
 */
const receivedSockets: object[] = []

const SUPERVISOR_GONE = 'the supervisor went away before it sent the configuration and the sockets'

/** Waits for the supervisor's start message (the config), then for its sockets. */
export async function receiveStart (): Promise<ServerStart> {
  // Gone while this process loaded its code: its 'disconnect' may have come before anyone listened.
  if (process.connected !== true) throw new Error(SUPERVISOR_GONE)
  return await new Promise<ServerStart>((resolve, reject) => {
    let start: StartMessage | null = null
    const listenFds: Record<string, number> = {}
    const threadFds: Record<string, number[]> = {}
    let expected = 0
    let received = 0
    const done = (): void => {
      process.off('message', onMessage)
      process.off('disconnect', onDisconnect)
      resolve({ ...start!, listenFds, threadFds })
    }
    const onMessage = (message: StartMessage | SocketMessage, handle: unknown): void => {
      if (message?.type === 'start') {
        start = message
        for (const [, count] of message.sockets) expected += count
        if (expected === 0) done()
        return
      }
      if (message?.type !== 'socket' || start === null || typeof (handle as { fd?: unknown } | undefined)?.fd !== 'number') return
      receivedSockets.push(handle as object)
      const fd = (handle as { fd: number }).fd
      if (listenFds[message.key] === undefined) listenFds[message.key] = fd
      else (threadFds[message.key] ??= []).push(fd)
      if (++received === expected) done()
    }
    const onDisconnect = (): void => {
      process.off('message', onMessage)
      reject(new Error(SUPERVISOR_GONE))
    }
    process.on('message', onMessage)
    process.once('disconnect', onDisconnect)
  })
}

/** Tells the supervisor that every pool is listening. */
export function reportReady (): void {
  const message: ServerMessage = { type: 'ready' }
  process.send?.(message, undefined, {}, () => { /* a gone supervisor is handled by onSupervisorGone */ })
}

/**
 * Calls `handler` if the supervisor dies (its end of the IPC channel closes), so that a server whose
 * parent was SIGKILLed does not live on as an orphan holding the sockets.
 */
export function onSupervisorGone (handler: () => void): void {
  if (process.connected !== true) {
    queueMicrotask(handler)
    return
  }
  process.once('disconnect', handler)
  process.channel?.unref()
}
