// The supervisor: a tiny parent process that keeps the server alive when the whole server process
// dies. Threads isolate most failures, but some cannot be contained in a thread: a V8 fatal error
// (some allocation shapes abort the process despite the per-thread heap cap, node-runtime.md §3),
// a native crash, a SIGKILL from the OOM killer. php-fpm's master survives its children; here the
// children are threads, so this parent plays the master's part for the one server process.
//
// The parent runs no pools, no piscina and no user code. It binds every pool's socket itself and
// sends them to the server process over the IPC channel (SCM_RIGHTS), after the already loaded
// configuration; the first server process was started before all that (master/server-process.ts),
// so that its Node start overlaps the supervisor's. The sockets never close while the parent
// lives, so while a new server process starts, connections wait in the kernel's backlog: clients see
// a delay, not "connection refused". Abnormal exits (a signal, a non-zero status) are restarted after
// an exponential backoff; too many within an interval make the parent give up with status 70, so an
// outer manager (systemd's Restart=) takes over. Stop signals are forwarded, and a server process
// that does not stop in time (process.exit() hangs while a thread is blocked in a system call,
// node-runtime.md §2) is killed.

import type { ChildProcess } from 'node:child_process'
import { unlinkSync, writeFileSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { FpmConfig } from '../config/types.ts'
import type { Logger } from '../log/logger.ts'
import { reopenLogs } from '../log/reopen-signal.ts'
import { bindListenSocket, type BoundSocket } from '../server/listener.ts'
import { statusListenConfig, statusListenKey } from '../status/status-listener.ts'
import type { ServerMessage, SocketMessage, StartMessage } from './server-channel.ts'
import { startServerProcess, takeEarlyServerProcess } from './server-process.ts'

/** Descriptors passed for the threads of all pm.accept = threads pools at most (within a 1024 fd limit; threads beyond have theirs copied). */
const MAX_THREAD_FDS = 256
/** Status of a supervisor that gave up (php-fpm's EX_SOFTWARE). */
export const EXIT_GAVE_UP = 70

export const SUPERVISOR_DEFAULTS = {
  /** Abnormal exits within crashIntervalMs that make the supervisor give up. */
  crashLimit: 5,
  crashIntervalMs: 60_000,
  /** First restart delay, doubled after each abnormal exit up to restartDelayMaxMs. */
  restartDelayMs: 100,
  restartDelayMaxMs: 5_000,
  /** A server process that ran this long resets the backoff to restartDelayMs. */
  stableAfterMs: 30_000,
  /** How long a stop signal may take when process_control_timeout is 0 (php: escalate at once). */
  stopTimeoutMs: 10_000
} as const

export interface SupervisorOptions {
  readonly config: FpmConfig
  readonly log: Logger
  /** Written with the supervisor's pid (where signals go), removed on exit. */
  readonly pidFile: string | null
  /** The command line's arguments, given to the server process for ps to show (it does not read them). */
  readonly args: readonly string[]
  /** -O: the server process logs to stderr too. */
  readonly forceStderr: boolean
  readonly crashLimit?: number
  readonly crashIntervalMs?: number
  readonly restartDelayMs?: number
  readonly restartDelayMaxMs?: number
  readonly stableAfterMs?: number
}


type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT'
const STOP_SIGNALS: readonly StopSignal[] = process.platform === 'win32' ? ['SIGTERM', 'SIGINT'] : ['SIGTERM', 'SIGINT', 'SIGQUIT']
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = process.platform === 'win32' ? [] : ['SIGUSR1', 'SIGUSR2']

export class Supervisor {
  readonly #opts: SupervisorOptions
  readonly #log: Logger
  readonly #crashLimit: number
  readonly #crashIntervalMs: number
  readonly #restartDelayMs: number
  readonly #restartDelayMaxMs: number
  readonly #stableAfterMs: number
  readonly #stopTimeoutMs: number
  /** `threads`: pm.accept = threads, the pool's static thread count (each starting thread gets a descriptor of the socket). */
  readonly #sockets: Array<{ readonly pool: string, readonly socket: BoundSocket, readonly threads?: number }> = []
  readonly #signalHandlers: Array<[NodeJS.Signals, () => void]> = []
  #pidFileWritten = false

  #child: ChildProcess | null = null
  #childStartedAt = 0
  #everReady = false
  /** performance.now() of the last abnormal exit, while a restart is pending or starting. */
  #downSince: number | null = null
  /** performance.now() of each abnormal exit within the crash interval. */
  #crashes: number[] = []
  /** Abnormal exits since the last stable run: the backoff exponent. */
  #streak = 0
  #restartTimer: NodeJS.Timeout | null = null
  #killTimer: NodeJS.Timeout | null = null
  #stopSignal: StopSignal | null = null
  /** The last SIGUSR1/SIGUSR2 forwarded: a server process that dies of it was not crashing. */
  #forwarded: NodeJS.Signals | null = null
  /** The current server process said ready: it listens for SIGUSR1 (before, the signal would start its inspector). */
  #childReady = false
  /** A SIGUSR1 (reopen the logs) that arrived before the server process was ready: sent when it is. */
  #reopenPending = false
  #finish: ((code: number) => void) | null = null

  constructor (opts: SupervisorOptions) {
    this.#opts = opts
    this.#log = opts.log
    this.#crashLimit = opts.crashLimit ?? SUPERVISOR_DEFAULTS.crashLimit
    this.#crashIntervalMs = opts.crashIntervalMs ?? SUPERVISOR_DEFAULTS.crashIntervalMs
    this.#restartDelayMs = opts.restartDelayMs ?? SUPERVISOR_DEFAULTS.restartDelayMs
    this.#restartDelayMaxMs = opts.restartDelayMaxMs ?? SUPERVISOR_DEFAULTS.restartDelayMaxMs
    this.#stableAfterMs = opts.stableAfterMs ?? SUPERVISOR_DEFAULTS.stableAfterMs
    const pct = opts.config.global.processControlTimeoutMs
    this.#stopTimeoutMs = pct > 0 ? pct : SUPERVISOR_DEFAULTS.stopTimeoutMs
  }

  /**
   * Binds the sockets, writes the pid file, starts the server process and supervises it. Throws
   * (after cleaning up) when a socket cannot be bound; otherwise resolves with the exit status:
   * the server's own after a stop or a failed first start, 70 after giving up.
   */
  async run (): Promise<number> {
    try {
      for (const pool of this.#opts.config.pools) {
        const socket = await bindListenSocket(pool)
        if (socket !== null) this.#sockets.push({ pool: pool.name, socket, threads: pool.pm.accept === 'threads' ? pool.pm.maxChildren : undefined })
        const status = statusListenConfig(pool)
        const statusSocket = status === null ? null : await bindListenSocket(status)
        if (statusSocket !== null) this.#sockets.push({ pool: statusListenKey(pool.name), socket: statusSocket })
      }
      if (this.#opts.pidFile !== null) {
        writeFileSync(this.#opts.pidFile, String(process.pid), { mode: 0o644 })
        this.#pidFileWritten = true
      }
    } catch (err) {
      this.#cleanup()
      throw err
    }
    const done = new Promise<number>((resolve) => { this.#finish = resolve })
    this.#log.info(`fpm is running, pid ${process.pid}`)
    for (const signal of STOP_SIGNALS) this.#on(signal, () => { this.#stop(signal) })
    for (const signal of FORWARDED_SIGNALS) this.#on(signal, () => { this.#forward(signal) })
    this.#spawn()
    const code = await done
    this.#cleanup()
    return code
  }

  #on (signal: NodeJS.Signals, handler: () => void): void {
    process.on(signal, handler)
    this.#signalHandlers.push([signal, handler])
  }

  #spawn (): void {
    this.#restartTimer = null
    // The first one was started early (master/server-process.ts); later ones, and a first one that
    // is already gone, here.
    const child = takeEarlyServerProcess() ?? startServerProcess(this.#opts.args)
    this.#child = child
    this.#childStartedAt = performance.now()
    this.#forwarded = null
    this.#childReady = false
    if (child.pid === undefined) {
      // spawn failed (EAGAIN, ENOMEM...): 'error' follows and no 'exit'.
      child.once('error', (err) => {
        this.#log.error({ err }, `unable to start the server process: ${err.message}`)
        this.#child = null
        if (this.#stopSignal !== null) this.#done(0)
        else if (!this.#everReady) this.#done(EXIT_GAVE_UP)
        else this.#onAbnormalExit(0)
      })
      return
    }
    const pid = child.pid
    this.#log[this.#everReady ? 'info' : 'debug'](`server process ${pid} started`)
    child.on('error', (err) => { this.#log.debug({ err }, `server process ${pid}: ${err.message}`) })
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'ready' && this.#child === child) this.#onReady(pid)
    })
    child.once('exit', (code, signal) => { this.#onExit(child, code, signal) })
    // The listening descriptor of each socket, then one for each initial thread of the pm.accept =
    // threads pools: the same socket sent again (each send is a new descriptor in the server process).
    let budget = MAX_THREAD_FDS
    const sends = this.#sockets.map(({ pool, socket, threads }) => {
      const copies = Math.min(threads ?? 0, budget)
      budget -= copies
      return { key: pool, handle: socket.handle, count: 1 + copies }
    })
    const start: StartMessage = {
      type: 'start',
      config: this.#opts.config,
      sockets: sends.map(({ key, count }) => [key, count] as const),
      forceStderr: this.#opts.forceStderr,
      supervisorPid: process.pid,
      stopTimeoutMs: this.#stopTimeoutMs
    }
    const undelivered = (what: string) => (err: Error | null): void => {
      if (err !== null) this.#log.debug({ err }, `server process ${pid}: ${what} not delivered`)
    }
    child.send(start, undelivered('start message'))
    // Node sends them in this order, each handle once the previous one was received.
    for (const { key, handle, count } of sends) {
      const message: SocketMessage = { type: 'socket', key }
      for (let n = 0; n < count; n++) child.send(message, handle as never, undelivered(`socket of ${key}`))
    }
  }

  #onReady (pid: number): void {
    this.#childReady = true
    if (this.#reopenPending) {
      this.#reopenPending = false
      this.#child?.kill('SIGUSR1')
    }
    if (!this.#everReady) {
      this.#everReady = true
      this.#log.info('ready to handle connections')
    } else {
      const down = this.#downSince === null ? '' : `, ${seconds(performance.now() - this.#downSince)} seconds after the previous one exited`
      this.#log.info(`server process ${pid} is ready to handle connections${down}`)
    }
    this.#downSince = null
  }

  #onExit (child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return
    this.#child = null
    this.#clearKillTimer()
    const uptime = performance.now() - this.#childStartedAt
    const how = signal !== null ? `on signal ${osConstants.signals[signal] ?? '?'} (${signal})` : `with code ${code ?? '?'}`
    const line = `server process ${child.pid ?? '?'} exited ${how} after ${seconds(uptime)} seconds from start`
    if (this.#stopSignal !== null) {
      // Stopping: whatever the way out, this is the end. A status that is not the stop's own outcome
      // (e.g. the SIGKILL of the escalation) is worth a warning.
      const clean = code === 0 || signal === this.#stopSignal
      this.#log[clean ? 'debug' : 'warn'](line)
      this.#done(clean ? 0 : statusOf(code, signal))
      return
    }
    if (!this.#everReady) {
      // The first start failed (its own log says why): restarting would fail the same way.
      this.#log.error(`${line}, before it was ready: not restarting`)
      this.#done(code !== null && code !== 0 ? code : EXIT_GAVE_UP)
      return
    }
    if (code === 0) {
      // Only a stop signal makes the server exit 0: someone stopped it directly (or systemd signalled
      // the whole cgroup). The server is meant to be down.
      this.#log.info(`${line}: it was stopped, exiting`)
      this.#done(0)
      return
    }
    if (signal !== null && signal === this.#forwarded) {
      // The server has no handler for a SIGUSR1/SIGUSR2 we forwarded: an operator's action, not a crash.
      this.#log.warn(`${line}: it does not handle the forwarded ${signal}; restarting it`)
      this.#downSince = performance.now()
      this.#spawn()
      return
    }
    this.#log.warn(line)
    this.#onAbnormalExit(uptime)
  }

  /** Counts an abnormal exit: restart after the backoff, or give up past the crash limit. */
  #onAbnormalExit (uptime: number): void {
    const now = performance.now()
    this.#downSince = now
    this.#crashes = this.#crashes.filter((t) => now - t < this.#crashIntervalMs)
    this.#crashes.push(now)
    if (uptime >= this.#stableAfterMs) this.#streak = 0
    this.#streak++
    const interval = seconds(this.#crashIntervalMs, 0)
    if (this.#crashes.length >= this.#crashLimit) {
      this.#log.fatal(`the server process exited abnormally ${this.#crashes.length} times within ${interval} seconds ` +
        `(--crash-limit ${this.#crashLimit} --crash-interval ${interval}): giving up`)
      this.#done(EXIT_GAVE_UP)
      return
    }
    const delay = Math.min(this.#restartDelayMs * 2 ** (this.#streak - 1), this.#restartDelayMaxMs)
    this.#log.info(`restarting the server process in ${seconds(delay, 3)} seconds ` +
      `(${this.#crashes.length} abnormal exit${this.#crashes.length === 1 ? '' : 's'} within ${interval} seconds, giving up at ${this.#crashLimit})`)
    this.#restartTimer = setTimeout(() => { this.#spawn() }, delay)
  }

  /** php-fpm's escalation (php-fpm.md §9.1): SIGQUIT, then SIGTERM after the timeout, SIGKILL 1 s later; SIGTERM/SIGINT, then SIGKILL. */
  #stop (signal: StopSignal): void {
    if (this.#stopSignal !== null) {
      // Repeats are ignored; only finishing (SIGQUIT) may become terminating.
      if (this.#stopSignal !== 'SIGQUIT' || signal === 'SIGQUIT') return
    }
    this.#stopSignal = signal
    if (this.#restartTimer !== null) {
      clearTimeout(this.#restartTimer)
      this.#restartTimer = null
    }
    const child = this.#child
    if (child === null) {
      this.#log.info(`${signal} received while no server process runs, exiting`)
      this.#done(0)
      return
    }
    this.#log.debug(`${signal} received, forwarding it to server process ${child.pid ?? '?'}`)
    child.kill(signal)
    this.#clearKillTimer()
    this.#killTimer = setTimeout(() => {
      const next = signal === 'SIGQUIT' ? 'SIGTERM' : 'SIGKILL'
      this.#log.warn(`server process ${child.pid ?? '?'} still running ${seconds(this.#stopTimeoutMs, 3)} seconds after ${signal}, sending ${next}`)
      child.kill(next)
      if (next === 'SIGTERM') {
        this.#killTimer = setTimeout(() => {
          this.#log.warn(`server process ${child.pid ?? '?'} still running 1 second after SIGTERM, sending SIGKILL`)
          child.kill('SIGKILL')
        }, 1000)
      }
    }, this.#stopTimeoutMs)
  }

  #forward (signal: NodeJS.Signals): void {
    const child = this.#child
    if (child === null || this.#stopSignal !== null) {
      this.#log.debug(`${signal} received while no server process runs: ignored`)
      return
    }
    if (signal === 'SIGUSR1') {
      // logrotate: this process's own error log too (php's master reopens it).
      reopenLogs(this.#log, { quiet: true })
      if (!this.#childReady) {
        this.#log.debug(`SIGUSR1 received while server process ${child.pid ?? '?'} starts: sent once it is ready`)
        this.#reopenPending = true
        return
      }
    }
    this.#log.debug(`${signal} received, forwarding it to server process ${child.pid ?? '?'}`)
    this.#forwarded = signal
    child.kill(signal)
  }

  #clearKillTimer (): void {
    if (this.#killTimer !== null) clearTimeout(this.#killTimer)
    this.#killTimer = null
  }

  #done (code: number): void {
    const finish = this.#finish
    this.#finish = null
    finish?.(code)
  }

  #cleanup (): void {
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer)
    this.#clearKillTimer()
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler)
    this.#signalHandlers.length = 0
    for (const { socket } of this.#sockets) socket.close()
    this.#sockets.length = 0
    if (this.#pidFileWritten && this.#opts.pidFile !== null) {
      try { unlinkSync(this.#opts.pidFile) } catch { /* already removed */ }
      this.#pidFileWritten = false
    }
  }
}

function seconds (ms: number, digits = 6): string {
  return (ms / 1000).toFixed(digits)
}

/** A shell-style status for a process that ended: its code, or 128 + the signal's number. */
function statusOf (code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  const n = signal === null ? undefined : osConstants.signals[signal]
  return n === undefined ? 1 : 128 + n
}
