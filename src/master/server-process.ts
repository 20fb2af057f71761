// The supervisor's server process (master/supervisor.ts; its entry point is master/server-main.ts):
// how it is started, and the one that bin/node-fpm.js starts before it loads the server's code. A
// supervised start is two Node starts in a row, the supervisor's (its code, the configuration, the
// sockets) then the server's; started at once, the server process loads its code while the
// supervisor loads its own, and waits for the start message (about 90 ms of the default start:
// bench/startup.ts). The supervisor adopts it; a run that turns out not to supervise (-t, an error,
// --no-supervisor...) ends it unused.
// Imports nothing of the server: bin/node-fpm.js loads this module before anything else.

import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * The server process's entry point, beside this module: src/master/server-main.ts, or in the build
 * dist/main/server-main.js (the bundle's entry of that name, beside the chunk holding this code).
 */
const SERVER_MAIN = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './server-main.ts' : './server-main.js', import.meta.url))

/**
 * Arguments after which main.ts does not supervise: -t, -D, -h, -v (alone or among other letters)
 * and their long forms, --no-supervisor. A wrong guess costs a process start, ended at once.
 */
const NOT_SUPERVISED = /^(?:-[A-Za-z]*[tDhv][A-Za-z]*|--(?:test|daemonize|help|version|no-supervisor))$/

/**
 * The server process, with the IPC channel for the start message and the sockets (receiveStart).
 * `args`: the supervisor's, so that ps shows them (the process does not read them).
 */
export function startServerProcess (args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, SERVER_MAIN, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    // structured clone: the config crosses as it is (Infinity, nested frozen objects)
    serialization: 'advanced'
  })
}

let early: ChildProcess | null = null

/**
 * bin/node-fpm.js, first thing: starts the server process when `args` look like a supervised start
 * (options only, none of NOT_SUPERVISED; a first word that is not an option is a subcommand).
 */
export function startEarlyServerProcess (args: readonly string[]): void {
  if (early !== null) return
  if (args.length > 0 && args[0]?.startsWith('-') !== true) return
  if (args.some((arg) => NOT_SUPERVISED.test(arg))) return
  early = startServerProcess(args)
  // A failed spawn: the supervisor finds no pid and starts one itself.
  early.on('error', () => {})
}

/** The supervisor: the early server process if it is still there (it owns it from then on), else null. */
export function takeEarlyServerProcess (): ChildProcess | null {
  const child = early
  early = null
  if (child === null) return null
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) return child
  return null
}

/** main.ts, in a run that does not supervise: the early server process ends before it serves anything. */
export function endEarlyServerProcess (): void {
  const child = early
  early = null
  // Still loading or waiting for its start message: no handler of its own yet, so SIGTERM ends it quietly.
  child?.kill('SIGTERM')
}
