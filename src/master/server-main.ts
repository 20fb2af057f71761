// The server process of a supervised start (master/server-process.ts starts it; bin/node-fpm.js
// before it loads anything else). Its configuration and sockets come from the supervisor over IPC
// (master/server-channel.ts), never from its arguments: those are the supervisor's, shown by ps.
// Its own entry point, so that it loads the server's code (the pools, piscina, the logger) while the
// supervisor loads its own, and none of the command line's (commander, the configuration parser,
// the bench and request commands).

import { createLogger } from '../log/logger.ts'
import { EXIT_SOFTWARE, EXIT_USAGE, exitProcess } from './exit-status.ts'
import { receiveStart, reportReady, type ServerStart } from './server-channel.ts'
import { serve } from './serve.ts'

let start: ServerStart | null = null
if (typeof process.send !== 'function') {
  process.stderr.write('ERROR: this is the server process of a supervised node-fpm, started by the supervisor: run node-fpm\n')
  process.exitCode = EXIT_USAGE
} else {
  try {
    start = await receiveStart()
  } catch {
    // Started early by a run that does not supervise after all, or a supervisor that died: nothing to report to.
    process.exitCode = EXIT_SOFTWARE
  }
}
if (start !== null) {
  const config = start.config
  const log = createLogger({ level: config.global.logLevel, errorLog: start.forceStderr ? 'stderr' : config.global.errorLog })
  if (await serve(config, log, { pidFile: null }, start)) reportReady()
  else exitProcess(log, Number(process.exitCode))
}
