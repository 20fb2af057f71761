// pm.accept = threads: the listening socket for a thread. The process holds it bound (a descriptor
// the supervisor sent, or one bound by the main thread, which never listens on it).
// A thread needs a descriptor of its own, because the one a thread listens on is closed when the
// thread ends, and Node cannot duplicate a descriptor: a short-lived child process gets a copy as
// its fd 4 and sends it back over IPC (SCM_RIGHTS), and the thread adopts the handle that arrives
// (thread-server.ts serveOnThread). All the copies share the socket's one accept queue, so a thread
// that ends loses no connection that waits there. Under the supervisor the server process receives
// a descriptor for each initial thread (master/server-channel.ts receiveStart): a thread that takes one
// opens it itself, without a process (claimThreadFd, openThreadFd); later threads have theirs copied.

import { FpmError } from '../common/errors.ts'

// Not ESM imports: their namespaces would load more of node:child_process and node:net than needed (pool/script-resolver.ts).
const { spawn } = process.getBuiltinModule('node:child_process')
const net = process.getBuiltinModule('node:net') as unknown as { _createServerHandle: (address: null, port: number, addressType: number, fd: number, flags: number) => object | number }

/** How long the copy of the listening socket may take to arrive (a Node process start, ~30 ms). */
const COPY_TIMEOUT_MS = 10_000

/** The child that copies the socket: fd 3 is its IPC channel, fd 4 the socket. */
const COPY_SCRIPT = "const h=require('node:net')._createServerHandle(null,0,0,4,0);" +
  "if(typeof h==='number')process.exit(2);process.send('socket',h,()=>{process.exit(0)})"

/** A descriptor of this thread's own of the socket `fd`, as a raw handle. */
export async function copyListeningSocket (fd: number): Promise<object> {
  const child = spawn(process.execPath, ['-e', COPY_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit', 'ipc', fd] })
  try {
    return await new Promise<object>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new FpmError('FPM_ERR_LISTEN_BIND', `no copy of the listening socket within ${COPY_TIMEOUT_MS} ms`)) }, COPY_TIMEOUT_MS)
      child.once('message', (_m: unknown, handle: object | undefined) => {
        clearTimeout(timer)
        if (handle === undefined) reject(new FpmError('FPM_ERR_LISTEN_BIND', 'the listening socket did not come back'))
        else resolve(handle)
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new FpmError('FPM_ERR_LISTEN_BIND', `the process that copies the listening socket exited (${code ?? 'signal'})`))
      })
    })
  } finally {
    child.unref()
  }
}

/** One of the supervisor's descriptors left for the starting threads (pool.ts threadFdTable), or -1. */
export function claimThreadFd (table: Int32Array): number {
  const i = Atomics.add(table, 0, 1) + 1
  return i < table.length ? Atomics.load(table, i) : -1
}

/** The raw handle of `fd`, a descriptor of the listening socket the supervisor sent, now this thread's. */
export function openThreadFd (fd: number): object {
  const handle = net._createServerHandle(null, 0, 0, fd, 0)
  if (typeof handle === 'number') throw new FpmError('FPM_ERR_LISTEN_BIND', `the supervisor's descriptor ${fd} of the listening socket cannot be opened (error ${handle})`)
  return handle
}
