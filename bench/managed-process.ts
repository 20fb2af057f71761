// External servers started by tests and benchmarks (nginx, php-fpm): spawned so that they never
// outlive this process (setpriv --pdeathsig, plus an exit hook that kills whatever is still
// registered and removes its temp dir), stopped with escalating signals. Shared by
// bench/php-fpm.ts and test/helpers/nginx.ts.

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, closeSync, constants, openSync, rmSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'

export interface ManagedProcess {
  readonly child: ChildProcess
  /** Removed by the exit hook if the process is still registered then. */
  readonly dir: string
  /** Signals go to the whole process group (a master and its workers). */
  readonly group: boolean
}

const live = new Set<ManagedProcess>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const p of live) {
      if (p.group || !hasExited(p.child)) signal(p, 'SIGKILL')
      try { rmSync(p.dir, { recursive: true, force: true }) } catch {}
    }
    live.clear()
  })
}

export function isExecutable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable) ?? null

/**
 * Spawns `bin` with stdout/stderr appended to `logFile` and registers it. Under setpriv
 * --pdeathsig the process gets `deathSignal` when this process dies, however it dies. With `group`
 * it leads a new process group, so a master and its workers are signalled together. The child is
 * unref'd: a handle nobody stopped does not keep this process alive (the exit hook kills it).
 */
export function spawnManaged (bin: string, args: string[], logFile: string, opts: { dir: string, group: boolean, deathSignal: NodeJS.Signals }): ManagedProcess {
  installExitHook()
  const fd = openSync(logFile, 'a')
  try {
    const [cmd, argv] = SETPRIV !== null
      ? [SETPRIV, ['--pdeathsig', opts.deathSignal, '--', bin, ...args]]
      : [bin, args]
    const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], detached: opts.group })
    child.on('error', () => {}) // surfaces as an early exit
    child.unref()
    const managed: ManagedProcess = { child, dir: opts.dir, group: opts.group }
    live.add(managed)
    return managed
  } finally {
    closeSync(fd)
  }
}

/** Stops tracking it (the caller removed its dir or is about to). */
export function forget (p: ManagedProcess): void {
  live.delete(p)
}

export function hasExited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** The process group when `group`, falling back to the process alone. */
export function signal (p: ManagedProcess, sig: NodeJS.Signals): void {
  if (p.child.pid === undefined) return
  if (p.group) {
    try { process.kill(-p.child.pid, sig); return } catch {}
  }
  try { p.child.kill(sig) } catch {}
}

export function waitExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false) }, ms)
    function onExit (): void { clearTimeout(timer); resolve(true) }
    child.once('exit', onExit)
  })
}

/**
 * Sends each of `signals` in turn to the process, giving it 5 s each, then SIGKILL (to the group
 * with `group`, even after the leader exited, so no worker outlives it); resolves once it is gone.
 */
export async function stopManaged (p: ManagedProcess, signals: NodeJS.Signals[]): Promise<void> {
  const child = p.child
  if (child.pid === undefined) return
  child.ref() // keep the event loop alive until the exit is seen
  try {
    if (!hasExited(child)) {
      for (const sig of signals) {
        try { child.kill(sig) } catch {}
        if (await waitExit(child, 5000)) break
      }
    }
    if (p.group || !hasExited(child)) {
      signal(p, 'SIGKILL')
      await waitExit(child, 5000)
    }
  } finally {
    child.unref()
  }
}

/**
 * A handle's stop(): stops the process with `signals` (stopManaged), unregisters it and removes its
 * temp dir; called again, it returns the same promise.
 */
export function stopper (p: ManagedProcess, signals: NodeJS.Signals[]): () => Promise<void> {
  let stopping: Promise<void> | null = null
  return () => {
    stopping ??= (async () => {
      await stopManaged(p, signals)
      forget(p)
      await rm(p.dir, { recursive: true, force: true })
    })()
    return stopping
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, ms) })
}
