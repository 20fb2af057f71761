// Serving in this process: the pools, their listeners and the signal handlers. The server of
// `node-fpm --no-supervisor` (cli/main.ts) and the supervisor's server process (master/server-main.ts).

import type { FpmConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import { installReopenSignal } from '../log/reopen-signal.ts'
import { exitProcess, startFailed } from './exit-status.ts'
import { Master } from './master.ts'
import { onSupervisorGone, type ServerStart } from './server-channel.ts'
import { useSerialScavenges } from './v8-flags.ts'

/**
 * Starts the pools and their listeners in this process, which then serves until a stop signal.
 * `supervised`: what the supervisor sent (its sockets, its pid). Resolves false (exit status set)
 * when the start failed.
 */
export async function serve (config: FpmConfig, log: Logger, opts: { pidFile: string | null }, supervised?: ServerStart): Promise<boolean> {
  // SIGUSR1 reopens the log files (logrotate). First: until a listener exists, Node's default for
  // SIGUSR1 is to start the inspector.
  installReopenSignal(log)
  const v8Flag = useSerialScavenges(config)
  if (v8Flag !== null) log.debug(`the pools fill the CPUs: threads collect their young generation alone (${v8Flag})`)
  const master = new Master(config, log)
  try {
    await master.start(supervised === undefined ? opts : { ...opts, supervised: true, listenFds: supervised.listenFds, threadFds: supervised.threadFds })
  } catch (err) {
    startFailed(log, err)
    return false
  }
  master.installSignalHandlers((code) => { exitProcess(log, code) }, { supervised: supervised !== undefined })
  if (supervised !== undefined) {
    onSupervisorGone(() => {
      // The parent was killed (SIGKILL...): do not live on as an orphan holding the sockets.
      log.error(`the supervisor (pid ${supervised.supervisorPid}) is gone, exiting`)
      setTimeout(() => { process.kill(process.pid, 'SIGKILL') }, supervised.stopTimeoutMs).unref()
      master.stop(false).then(() => { exitProcess(log, 1) }, () => { exitProcess(log, 1) })
    })
  }
  return true
}
