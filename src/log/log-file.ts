// A log file this process appends to (the access logs, the error log) and reopens on SIGUSR1, as
// php-fpm does for logrotate (php-fpm.md §9.3). Not a stream and not pino: a destination that takes
// whole lines and never blocks the event loop.
//
// php's workers write each access log line with one write(2), blocking. Here the main thread serves
// every connection, so a line is queued and written asynchronously: at most one fs.write per file is
// in flight, and the lines queued meanwhile (and those of the same event-loop turn, by setImmediate)
// go out together in the next one. Under load many requests share one system call; a quiet server
// still writes each line within a turn of the loop, so `tail -f` sees it at once.
//
// Write errors never reach the caller: the lines of that write are lost, the owner is told once per
// episode (onError) and told again when writes work again. A file that stops taking data (a full
// pipe, a hung NFS server) makes the queue grow up to MAX_QUEUED_BYTES; past it new lines are dropped
// and counted, so a slow disk costs log lines, never the server's memory.

import { Buffer } from 'node:buffer'
import { FpmError } from '../common/errors.ts'

// node:fs without its ESM namespace (which loads all of it): a thread that writes an access log loads this (pool/script-resolver.ts).
const { close: fsClose, openSync, write: fsWrite, writeSync } = process.getBuiltinModule('node:fs')

/** Bytes queued (not yet written) beyond which new lines are dropped. */
export const MAX_QUEUED_BYTES = 8 * 1024 * 1024
/** Pause before writing again after EAGAIN (a non-blocking pipe that is full). */
const EAGAIN_RETRY_MS = 10

export interface LogFileOptions {
  /** What the file is, for messages: php's words ('access log', 'error log'). */
  readonly kind: string
  /** Whose file it is (a pool name), for messages; null: the server's. */
  readonly owner?: string | null
  /** Mode of a file created by the open (php creates its logs 0600). */
  readonly mode?: number
  /**
   * 'latin1' when lines are byte strings (one char per byte: FastCGI params and headers are decoded
   * so), written byte for byte as php writes them; 'utf8' for ordinary text (pino's JSON).
   */
  readonly encoding?: 'latin1' | 'utf8'
  /**
   * Write trouble, once per episode: `err` set when writes start failing (or lines are dropped),
   * null when they work again; `lost` counts the lines lost meanwhile.
   */
  readonly onError?: (file: LogFile, err: Error | null, lost: number) => void
}

/** Every open LogFile of this process, in opening order: what SIGUSR1 reopens. */
const openFiles = new Set<LogFile>()
let exitHookInstalled = false

export class LogFile {
  readonly path: string
  readonly kind: string
  readonly owner: string | null
  readonly #mode: number
  readonly #encoding: 'latin1' | 'utf8'
  readonly #onError: LogFileOptions['onError']
  #fd: number
  #queue: string[] = []
  /** Chars queued: bytes for latin1, a lower bound for utf8 (enough for a memory cap). */
  #queuedChars = 0
  #writing = false
  #scheduled = false
  #closed = false
  /** fds replaced by reopen() while a write to them was in flight: closed when it ends. */
  #retired: number[] = []
  #idleWaiters: Array<() => void> = []
  /** In a failure episode: lines lost since it began. */
  #failing = false
  #lost = 0

  /** Opens (creates) `path` for appending. Throws FpmError FPM_ERR_LOG_OPEN: php fails its start-up then. */
  static open (path: string, opts: LogFileOptions): LogFile {
    return new LogFile(path, opts, openAppend(path, opts.mode ?? 0o600, opts.kind, opts.owner ?? null))
  }

  private constructor (path: string, opts: LogFileOptions, fd: number) {
    this.path = path
    this.kind = opts.kind
    this.owner = opts.owner ?? null
    this.#mode = opts.mode ?? 0o600
    this.#encoding = opts.encoding ?? 'utf8'
    this.#onError = opts.onError
    this.#fd = fd
    openFiles.add(this)
    if (!exitHookInstalled) {
      exitHookInstalled = true
      // process.exit() (the CLI's way out) runs no more I/O callbacks: whatever is still queued is
      // written synchronously here.
      process.on('exit', flushAllSync)
    }
  }

  /** Lines (each ending with '\n') queued since the last write. */
  get queuedChars (): number { return this.#queuedChars }

  /** Queues `text` (whole lines); it is written within this turn of the event loop or after the write in flight. */
  write (text: string): boolean {
    if (this.#closed) return false
    if (this.#queuedChars + text.length > MAX_QUEUED_BYTES) {
      this.#lose(1, new FpmError('FPM_ERR_LOG_WRITE', `more than ${MAX_QUEUED_BYTES} bytes wait to be written: the file does not keep up, lines are dropped`))
      return false
    }
    this.#queue.push(text)
    this.#queuedChars += text.length
    if (!this.#writing && !this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => { this.#scheduled = false; this.#writeQueued() })
    }
    return true
  }

  #writeQueued (): void {
    if (this.#writing || this.#queue.length === 0) {
      if (!this.#writing) this.#wakeIdle()
      return
    }
    const lines = this.#queue.length
    const data = Buffer.from(lines === 1 ? this.#queue[0] as string : this.#queue.join(''), this.#encoding)
    this.#queue = []
    this.#queuedChars = 0
    this.#writing = true
    this.#writeBuffer(this.#fd, data, 0, lines)
  }

  #writeBuffer (fd: number, data: Buffer, offset: number, lines: number): void {
    fsWrite(fd, data, offset, data.length - offset, null, (err, written) => {
      if (err !== null) {
        if (err.code === 'EAGAIN' && !this.#closed) {
          setTimeout(() => { this.#writeBuffer(fd, data, offset, lines) }, EAGAIN_RETRY_MS).unref()
          return
        }
        this.#lose(lines, err)
      } else if (offset + written < data.length) {
        // A short write (a pipe): the rest, from where it stopped.
        this.#writeBuffer(fd, data, offset + written, lines)
        return
      } else if (this.#failing) {
        this.#failing = false
        const lost = this.#lost
        this.#lost = 0
        this.#onError?.(this, null, lost)
      }
      this.#writing = false
      this.#closeRetired()
      this.#writeQueued()
    })
  }

  #lose (lines: number, err: Error): void {
    this.#lost += lines
    if (this.#failing) return
    this.#failing = true
    this.#onError?.(this, err, this.#lost)
  }

  /**
   * Opens the path again (logrotate renamed the file: new lines go to a new file at the path).
   * Lines already handed to a write go to the old file, the rest to the new one. On failure the old
   * file is kept and the error thrown.
   */
  reopen (): void {
    if (this.#closed) return
    const fd = openAppend(this.path, this.#mode, this.kind, this.owner)
    const old = this.#fd
    this.#fd = fd
    if (this.#writing) this.#retired.push(old)
    else closeQuietly(old)
  }

  #closeRetired (): void {
    for (const fd of this.#retired) closeQuietly(fd)
    this.#retired = []
  }

  /** Resolves once everything queued so far has been written (or lost). `cb`: pino's logger.flush(cb). */
  async flush (cb?: () => void): Promise<void> {
    if (this.#writing || this.#queue.length > 0) await new Promise<void>((resolve) => { this.#idleWaiters.push(resolve) })
    cb?.()
  }

  #wakeIdle (): void {
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

  /**
   * Writes what is queued now, blocking (process exit). A write still in flight is not waited for:
   * its lines may land after these.
   */
  flushSync (): void {
    if (this.#queue.length === 0 || this.#fd < 0) return
    const data = Buffer.from(this.#queue.join(''), this.#encoding)
    this.#queue = []
    this.#queuedChars = 0
    try {
      let off = 0
      while (off < data.length) off += writeSync(this.#fd, data, off)
    } catch { /* at exit there is no one left to tell */ }
  }

  /** Writes what is queued, then closes the file. */
  async close (): Promise<void> {
    if (this.#closed) return
    await this.flush()
    this.#closed = true
    openFiles.delete(this)
    const fd = this.#fd
    this.#fd = -1
    closeQuietly(fd)
  }
}

/**
 * SIGUSR1: reopens every log file of this process. Returns one outcome per file, in opening order
 * (the error log first: it is opened before the pools start).
 */
export function reopenLogFiles (): Array<{ readonly file: LogFile, readonly error: Error | null }> {
  const out: Array<{ file: LogFile, error: Error | null }> = []
  for (const file of openFiles) {
    try {
      file.reopen()
      out.push({ file, error: null })
    } catch (err) {
      out.push({ file, error: err as Error })
    }
  }
  return out
}

function flushAllSync (): void {
  for (const file of openFiles) file.flushSync()
}

function openAppend (path: string, mode: number, kind: string, owner: string | null): number {
  try {
    return openSync(path, 'a', mode)
  } catch (err) {
    // php: "failed to open access log (%s)" / "failed to open error_log (%s)", then strerror.
    const what = kind === 'error log' ? 'error_log' : kind
    throw new FpmError('FPM_ERR_LOG_OPEN', `${owner === null ? '' : `[pool ${owner}] `}failed to open ${what} (${path}): ${(err as Error).message}`, { cause: err })
  }
}

function closeQuietly (fd: number): void {
  if (fd < 0) return
  // Not fs.closeSync in the hot path's turn: the close of a file just written can wait for the disk.
  fsClose(fd, () => {})
}

