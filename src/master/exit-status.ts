// How node-fpm's processes end: the exit statuses (php-fpm's: sysexits.h) and a failed start's
// report. Shared by the command line (cli/main.ts) and the supervised server process
// (master/server-main.ts); imports nothing of the pools.

import { isFpmError } from '../common/errors.ts'
import type { Logger } from '../log/logger.ts'

/** A bad command line (EX_USAGE). */
export const EXIT_USAGE = 64
/** An internal failure (EX_SOFTWARE). */
export const EXIT_SOFTWARE = 70
/** A bad configuration, or a start it made fail, such as a socket that cannot be bound (EX_CONFIG). */
export const EXIT_CONFIG = 78

/** Logs why the start failed, php's way ("FPM initialization failed"), and sets the exit status. */
export function startFailed (log: Logger, err: unknown): void {
  if (isFpmError(err)) log.fatal(err.message)
  else log.fatal({ err }, 'start-up failed')
  log.fatal('FPM initialization failed')
  process.exitCode = isFpmError(err) ? EXIT_CONFIG : EXIT_SOFTWARE
}

/** Exits now, after the log's buffered lines. */
export function exitProcess (log: Logger, code: number): never {
  log.flush?.()
  process.exit(code) // eslint-disable-line n/no-process-exit
}
