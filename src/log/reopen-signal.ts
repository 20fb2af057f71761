// SIGUSR1 reopens the log files (php-fpm.md §9.3), which is what logrotate's postrotate sends:
// every LogFile of the process (error log, access logs) is opened again at its path, with php's
// lines "error log file re-opened" / "access log file re-opened" and, on failure, php's
// "unable to re-opened ... file" (the old file is kept then).
//
// Node reserves SIGUSR1 for its inspector. A JS listener takes the signal over: on Node 24 the
// inspector does not start when one is installed (measured). --disable-sigusr1 must NOT be used:
// it blocks SIGUSR1 in every thread, so no listener would ever run (measured on Node 24.21); the
// listener itself keeps the inspector off, which is what that flag is for. php also restarts its
// workers so that they inherit the new access log fd; threads need not: the main thread writes.

import type { Logger } from './logger.ts'
import { reopenLogFiles } from './log-file.ts'

const FLAG = '--disable-sigusr1'

/**
 * Installs the SIGUSR1 listener (as early as possible: until then the signal would start the
 * inspector). Returns the function that removes it. `quiet`: success is logged at debug (the
 * supervisor, whose server process logs the notices).
 */
export function installReopenSignal (log: Logger, opts: { quiet?: boolean } = {}): () => void {
  if (process.platform === 'win32') return () => {}
  if (process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? '').includes(FLAG)) {
    log.warn(`${FLAG} is set: Node blocks SIGUSR1, so the log files cannot be reopened by SIGUSR1 (logrotate: use copytruncate)`)
  }
  const onSignal = (): void => { reopenLogs(log, opts) }
  process.on('SIGUSR1', onSignal)
  return () => { process.off('SIGUSR1', onSignal) }
}

/** Log files opened elsewhere than on this thread (pm.accept = threads: each thread's access log). */
const elsewhere = new Set<() => void>()

/** `reopen` runs on each SIGUSR1, after this thread's files; the returned function removes it. */
export function onReopenLogs (reopen: () => void): () => void {
  elsewhere.add(reopen)
  return () => { elsewhere.delete(reopen) }
}

/** Reopens every log file of this process and says so, as php-fpm's master does on SIGUSR1. */
export function reopenLogs (log: Logger, opts: { quiet?: boolean } = {}): void {
  const level = opts.quiet === true ? 'debug' : 'info'
  log.debug('received SIGUSR1')
  const outcomes = reopenLogFiles()
  for (const reopen of elsewhere) reopen()
  let accessLogs = 0
  let accessFailed = false
  // The error log first: the lines that follow go to the new file.
  for (const { file, error } of outcomes) {
    if (file.kind !== 'error log') continue
    if (error === null) log[level]('error log file re-opened')
    else log.error({ err: error }, `unable to re-opened error log file: ${error.message}; still writing to the file it had open`)
  }
  for (const { file, error } of outcomes) {
    if (file.kind !== 'access log') continue
    accessLogs++
    if (error === null) continue
    accessFailed = true
    log.error({ pool: file.owner ?? undefined, err: error }, `unable to re-opened access log file: ${error.message}; still writing to the file it had open`)
  }
  // php says it once for all the pools' access logs, and not at all when no pool has one.
  if (accessLogs > 0 && !accessFailed) log[level]('access log file re-opened')
}
