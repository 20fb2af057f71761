// The ordered start-up and shutdown of the server (php's fpm.c + the signal half of
// fpm_process_ctl.c): config is already loaded; here pools, listeners and signals come up in
// order, and any failure undoes what was started and reports "FPM initialization failed".

import { writeFileSync, unlinkSync } from 'node:fs'
import type { FpmConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import { Pool } from '../pool/pool.ts'
import { ScriptResolver } from '../pool/script-resolver.ts'
import { Listener } from '../server/listener.ts'

export interface RunningPool {
  readonly pool: Pool
  readonly listener: Listener
}

export class Master {
  readonly config: FpmConfig
  readonly log: Logger
  readonly pools: RunningPool[] = []
  #pidFile: string | null = null
  #stopping: Promise<void> | null = null

  constructor (config: FpmConfig, log: Logger) {
    this.config = config
    this.log = log
  }

  /** Starts every pool and its listener. Throws (after cleaning up) when any cannot start. */
  async start (opts: { pidFile?: string | null } = {}): Promise<void> {
    try {
      for (const poolConfig of this.config.pools) {
        const log = this.log.child({ pool: poolConfig.name })
        const pool = new Pool(poolConfig, log)
        const listener = new Listener(poolConfig, { pool, resolver: new ScriptResolver(poolConfig), log })
        this.pools.push({ pool, listener })
        await listener.listen()
        log.debug(`listening on ${listener.boundAddress} (pm ${poolConfig.pm.mode}, ${poolConfig.pm.maxChildren} threads)`)
      }
    } catch (err) {
      await this.#teardown(false)
      throw err
    }
    const pidFile = opts.pidFile ?? this.config.global.pid
    if (pidFile !== null && pidFile !== undefined) {
      writeFileSync(pidFile, String(process.pid), { mode: 0o644 })
      this.#pidFile = pidFile
    }
    this.log.info(`fpm is running, pid ${process.pid}`)
    this.log.info('ready to handle connections')
  }

  /**
   * graceful (SIGQUIT): stop accepting, let running requests finish, then stop the threads.
   * fast (SIGTERM/SIGINT): stop accepting and terminate the threads now.
   */
  async stop (graceful: boolean): Promise<void> {
    this.#stopping ??= this.#teardown(graceful)
    await this.#stopping
  }

  /** SIGTERM/SIGINT terminate, SIGQUIT finishes gracefully (php-fpm.md §9). */
  installSignalHandlers (onStopped: (code: number) => void): void {
    const stop = (graceful: boolean, name: string): void => {
      this.log.info(`${name} received, ${graceful ? 'finishing gracefully' : 'exiting'}`)
      this.stop(graceful).then(() => {
        this.log.info('exiting, bye-bye!')
        onStopped(0)
      }, (err: unknown) => {
        this.log.error({ err }, 'shutdown failed')
        onStopped(1)
      })
    }
    process.once('SIGTERM', () => { stop(false, 'Terminating ...') })
    process.once('SIGINT', () => { stop(false, 'Terminating ...') })
    if (process.platform !== 'win32') process.once('SIGQUIT', () => { stop(true, 'Finishing ...') })
  }

  async #teardown (graceful: boolean): Promise<void> {
    for (const { listener } of this.pools) listener.close()
    if (!graceful) for (const { listener } of this.pools) listener.closeConnections(false)
    await Promise.allSettled(this.pools.map(async ({ pool }) => { await (graceful ? pool.close() : pool.destroy()) }))
    // Graceful: every task has settled and its response was written; let the bytes leave, then drop
    // the kept-alive connections.
    if (graceful) for (const { listener } of this.pools) listener.closeConnections(true)
    if (this.#pidFile !== null) {
      try { unlinkSync(this.#pidFile) } catch { /* already removed */ }
      this.#pidFile = null
    }
  }
}
