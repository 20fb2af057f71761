// The ordered start-up and shutdown of the server (php's fpm.c + the signal half of
// fpm_process_ctl.c): config is already loaded; here pools, listeners and signals come up in
// order, and any failure undoes what was started and reports "FPM initialization failed".

import { writeFileSync, unlinkSync } from 'node:fs'
import type { FpmConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import { AccessLog } from '../log/access-log.ts'
import { Pool } from '../pool/pool.ts'
import { ScriptResolver } from '../pool/script-resolver.ts'
import { FpmError } from '../common/errors.ts'
import { Listener, bindListenSocket, type BoundSocket } from '../server/listener.ts'
import { createStatusListener, statusListenKey } from '../status/status-listener.ts'
import { statusPage } from '../status/status-page.ts'

const THREAD_START_WAIT_MS = 10_000

export interface RunningPool {
  readonly pool: Pool
  /** The main thread's listener; null with pm.accept = threads (the pool's threads listen). */
  readonly listener: Listener | null
  /** pm.accept = threads, unsupervised: the socket this process bound for its threads (closed last). */
  readonly bound: BoundSocket | null
  /** pm.status_listen: the status page on an address of its own (status/status-listener.ts). */
  readonly statusListener: Listener | null
  /** access.log (log/access-log.ts): opened before the pool starts, as php's master opens it. */
  readonly accessLog: AccessLog | null
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

  /**
   * Starts every pool and its listener. Throws (after cleaning up) when any cannot start.
   * `supervised`: this is the server process of master/supervisor.ts: the supervisor owns the pid file
   * and the lifecycle log lines, `listenFds` (pool name → fd) are the sockets it bound, and
   * `threadFds` more descriptors of them for the initial threads of pm.accept = threads pools.
   */
  async start (opts: { pidFile?: string | null, supervised?: boolean, listenFds?: Readonly<Record<string, number>> | null, threadFds?: Readonly<Record<string, readonly number[]>> } = {}): Promise<void> {
    try {
      for (const poolConfig of this.config.pools) {
        const log = this.log.child({ pool: poolConfig.name })
        const g = this.config.global
        const accessLog = AccessLog.open(poolConfig, log)
        const fd = opts.listenFds?.[poolConfig.name]
        const threadsAccept = poolConfig.pm.accept === 'threads'
        // pm.accept = threads: the socket is bound (by the supervisor, else here) but never listened
        // on by this thread; each pool thread listens on a descriptor of its own (worker/thread-server.ts).
        const bound = threadsAccept && fd === undefined ? await bindListenSocket(poolConfig) : null
        const acceptFd = threadsAccept ? fd ?? bound?.fd : undefined
        if (threadsAccept && acceptFd === undefined) throw new FpmError('FPM_ERR_LISTEN_BIND', `[pool ${poolConfig.name}] pm.accept = threads: cannot bind '${poolConfig.listen.address}' for the threads to share`)
        const threadFds = fd === undefined ? undefined : opts.threadFds?.[poolConfig.name]
        const pool = new Pool(poolConfig, log, { emergencyRestartThreshold: g.emergencyRestartThreshold, emergencyRestartIntervalMs: g.emergencyRestartIntervalMs, acceptFd, threadFds })
        const ctx = { pool, resolver: new ScriptResolver(poolConfig), log, accessLog, statusPage: (query: string, isHead: boolean) => statusPage(pool, query, isHead) }
        const listener = threadsAccept ? null : new Listener(poolConfig, ctx)
        const statusListener = createStatusListener(poolConfig, ctx)
        this.pools.push({ pool, listener, bound, statusListener, accessLog })
        if (listener !== null) await listener.listen(fd === undefined ? {} : { fd })
        if (fd !== undefined) log.debug(`using the supervisor's socket fd=${fd}, "${poolConfig.listen.address}"`)
        log.debug(`${listener === null ? 'threads accept' : 'listening'} on ${listener?.boundAddress ?? poolConfig.listen.address} (pm ${poolConfig.pm.mode}, ${poolConfig.pm.maxChildren} threads)`)
        if (statusListener !== null) {
          const statusFd = opts.listenFds?.[statusListenKey(poolConfig.name)]
          await statusListener.listen(statusFd === undefined ? {} : { fd: statusFd })
          if (statusFd !== undefined) log.debug(`using the supervisor's socket fd=${statusFd}, "${poolConfig.pm.statusListen ?? ''}"`)
          log.debug(`status page (pm.status_listen) on ${statusListener.boundAddress}`)
        }
      }
    } catch (err) {
      await this.#teardown(false)
      throw err
    }
    await this.#threadsStarted()
    if (opts.supervised === true) {
      this.log.debug(`server process ${process.pid} started, supervisor pid ${process.ppid}`)
      return
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
   * php-fpm starts its children before it says it is ready: wait for every pool's initial threads
   * (requests that arrive meanwhile wait in the pool's queue), but not forever: a pool whose threads
   * cannot start is reported and retried by its process manager.
   */
  async #threadsStarted (): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout') }, THREAD_START_WAIT_MS) })
    const outcome = await Promise.race([Promise.all(this.pools.map(async ({ pool }) => { await pool.started })), timeout])
    clearTimeout(timer)
    if (outcome === 'timeout') this.log.warn(`the initial threads of some pools were not ready after ${THREAD_START_WAIT_MS / 1000} seconds: serving anyway`)
  }

  /**
   * graceful (SIGQUIT): stop accepting, let running requests finish, then stop the threads.
   * fast (SIGTERM/SIGINT): stop accepting and terminate the threads now.
   */
  async stop (graceful: boolean): Promise<void> {
    this.#stopping ??= this.#teardown(graceful)
    await this.#stopping
  }

  /**
   * SIGTERM/SIGINT terminate, SIGQUIT finishes gracefully (php-fpm.md §9).
   * Unsupervised, a second signal of the same kind gets Node's default action (a second Ctrl-C kills).
   * `supervised`: repeats are ignored, as php-fpm does, because the same signal often arrives twice
   * (Ctrl-C reaches both processes, systemd signals the whole cgroup, and the supervisor forwards it);
   * the supervisor is the one that escalates to SIGKILL after process_control_timeout.
   */
  installSignalHandlers (onStopped: (code: number) => void, opts: { supervised?: boolean } = {}): void {
    let stopping = false
    const stop = (graceful: boolean, name: string): void => {
      if (stopping) return
      stopping = true
      this.log.info(`${name} received, ${graceful ? 'finishing gracefully' : 'exiting'}`)
      this.stop(graceful).then(() => {
        this.log.info('exiting, bye-bye!')
        onStopped(0)
      }, (err: unknown) => {
        this.log.error({ err }, 'shutdown failed')
        onStopped(1)
      })
    }
    const on = (signal: NodeJS.Signals, handler: () => void): void => {
      if (opts.supervised === true) process.on(signal, handler)
      else process.once(signal, handler)
    }
    on('SIGTERM', () => { stop(false, 'Terminating ...') })
    on('SIGINT', () => { stop(false, 'Terminating ...') })
    if (process.platform !== 'win32') on('SIGQUIT', () => { stop(true, 'Finishing ...') })
  }

  async #teardown (graceful: boolean): Promise<void> {
    const listeners = this.pools.flatMap(({ listener, statusListener }) => [listener, statusListener].filter((l): l is Listener => l !== null))
    for (const listener of listeners) listener.close()
    if (!graceful) for (const listener of listeners) listener.closeConnections(false)
    await Promise.allSettled(this.pools.map(async ({ pool }) => { await (graceful ? pool.close() : pool.destroy()) }))
    // Graceful: every task has settled and its response was written; let the bytes leave, then drop
    // the kept-alive connections.
    if (graceful) for (const listener of listeners) listener.closeConnections(true)
    for (const { bound } of this.pools) bound?.close()
    // Every request has had its line by now: write them out.
    await Promise.allSettled(this.pools.map(async ({ accessLog }) => { await accessLog?.close() }))
    if (this.#pidFile !== null) {
      try { unlinkSync(this.#pidFile) } catch { /* already removed */ }
      this.#pidFile = null
    }
  }
}
