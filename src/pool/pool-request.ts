// The pool's contract with the server (server/exchange.ts): what a request must answer to while
// the pool runs it, and what the server says of each request it dispatches.

import { Msg } from '../common/messages.ts'
import type { ChunkMessage, HeadMessage, LogMessage, PullMessage, SerializedError, WorkerResult, WorkerTask } from '../common/messages.ts'

/** What the pool needs from a request it runs. Implemented by server/exchange.ts. */
export interface PoolRequest {
  /** Assigned by the pool at dispatch. */
  poolId: number
  /** The thread that runs it (0 while it waits in the pool's queue). */
  threadId: number
  /** performance.now() when a thread took it (0 while queued). */
  startedAtMs: number
  onHead (head: string, body: Uint8Array | null, end: boolean): void
  onChunk (body: Uint8Array | null, end: boolean, failed: boolean): void
  onPull (bytes: number): void
  onWorkerLog (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err: SerializedError | null): void
  /** The request's method and REQUEST_URI, for log lines. */
  readonly method: string
  readonly uri: string
  /**
   * It ran longer than request_terminate_timeout (the pool logged it; its handler is aborted, and
   * its thread terminated after the grace): answer 504 now. onSettled still follows.
   */
  onTimedOut (): void
  /**
   * The request is done with: `result` on success (response null: it never ran, its client went
   * away), `error` when the thread died or the pool refused it (code FPM_ERR_QUEUE_FULL,
   * FPM_ERR_QUEUE_TIMEOUT, FPM_ERR_POOL_CLOSED: answer 503).
   */
  onSettled (result: WorkerResult | null, error: Error | null): void
}

/** What the server says of a request; the pool adds the id and the claim word (WorkerTask). */
export type TaskFields = Omit<WorkerTask, 'id' | 'claim'>

/**
 * Hands `req` what its handler said (a thread's HEAD, CHUNK, PULL or LOG for it): the pool does it
 * for a thread's channel, worker/thread-server.ts for a handler on the accepting thread.
 */
export function toPoolRequest (req: PoolRequest, m: HeadMessage | ChunkMessage | PullMessage | LogMessage): void {
  switch (m.t) {
    case Msg.HEAD: req.onHead(m.head, m.body, m.end); break
    case Msg.CHUNK: req.onChunk(m.body, m.end, m.failed); break
    case Msg.PULL: req.onPull(m.bytes); break
    case Msg.LOG: req.onWorkerLog(m.level, m.msg, m.err); break
  }
}
