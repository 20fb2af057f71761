// The root pino logger (php's zlog): one per process, one child per pool made at start-up.
// php-fpm's levels map onto pino's: debug→debug, notice→info, warning→warn, error→error, alert→fatal.
// On a TTY the lines go through pino-pretty (synchronously, in this thread: no transport thread);
// otherwise JSON lines, so a supervisor or journald can parse them.

import { createRequire } from 'node:module'
import { pino, type Logger, type DestinationStream } from 'pino'
import type { PrettyOptions, PrettyStream } from 'pino-pretty'
import type { LogLevel } from '../config/types.ts'
import { LogFile } from './log-file.ts'

export type { Logger }

const levelMap: Record<LogLevel, pino.LevelWithSilent> = {
  debug: 'debug',
  notice: 'info',
  warning: 'warn',
  error: 'error',
  alert: 'fatal'
}

export interface LoggerOptions {
  /** php's log_level */
  readonly level: LogLevel
  /** 'stderr' or a file path */
  readonly errorLog: string
  /** Force pretty or JSON output; default: pretty when the destination is a TTY. */
  readonly pretty?: boolean
}

/** pino-pretty, loaded only for pretty output: it costs ~15 ms of start-up a server without a TTY does not need. */
function loadPretty (): (options: PrettyOptions) => PrettyStream {
  return createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => PrettyStream
}

export function createLogger (opts: LoggerOptions): Logger {
  const toStderr = opts.errorLog === 'stderr' || opts.errorLog === '/dev/stderr' || opts.errorLog === '/proc/self/fd/2'
  const usePretty = opts.pretty ?? (toStderr && process.stderr.isTTY === true)
  let dest: DestinationStream
  if (usePretty) {
    dest = loadPretty()({
      destination: toStderr ? 2 : opts.errorLog,
      sync: true,
      colorize: toStderr && process.stderr.isTTY === true,
      translateTime: 'SYS:dd-mmm-yyyy HH:MM:ss',
      ignore: 'pid,hostname'
    })
  } else if (toStderr) {
    dest = pino.destination({ dest: 2, sync: true })
  } else {
    // A LogFile: written asynchronously, flushed at exit, reopened on SIGUSR1 (reopen-signal.ts).
    // Opened now: a path that cannot be opened fails the start-up (php: "failed to open error_log").
    dest = LogFile.open(opts.errorLog, {
      kind: 'error log',
      mode: 0o666,
      onError: (file, err) => { if (err !== null) process.stderr.write(`ERROR: unable to write to the error log '${file.path}': ${err.message}\n`) }
    })
  }
  return pino({ level: levelMap[opts.level], base: { pid: process.pid } }, dest)
}

/** A logger that drops everything: for library use and tests that do not care. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
