#!/usr/bin/env node
// The installed `node-fpm` command. It runs the build in dist/main/ (plain JavaScript, bundled, made by
// `npm run build`, which `npm ci` and `npm install` run through `prepare`): no type stripping at
// run time, in the server or in any of its threads. Without a build (a checkout where it was not
// made), it runs the TypeScript sources by type stripping: on by default from Node 22.18 / 23.6;
// Node 22.12-22.17 need --experimental-strip-types, so there the command starts itself again with
// the flag (worker threads inherit it).
import { existsSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { enableCompileCache } from 'node:module'
import { fileURLToPath } from 'node:url'

// Node's compile cache (in the system's temporary directory): a start does not compile again the
// code of the server and its dependencies that an earlier start compiled (~13 ms of ~150 ms).
// The server process the supervisor starts gets it through NODE_COMPILE_CACHE.
const compileCache = enableCompileCache?.()
if (compileCache?.directory !== undefined) process.env.NODE_COMPILE_CACHE ??= compileCache.directory

const built = fileURLToPath(new URL('../dist/main/main.js', import.meta.url))
const main = existsSync(built) ? built : fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
if (main === built) {
  // A supervised start: the server process starts now and loads its code while this one loads the
  // supervisor's (src/master/server-process.ts).
  const { startEarlyServerProcess } = await import('../dist/main/server-process.js')
  startEarlyServerProcess(process.argv.slice(2))
}
if (main === built || process.features.typescript) {
  await import(main)
} else {
  const child = spawn(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', main, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']) {
    process.on(sig, () => { child.kill(sig) })
  }
  child.on('exit', (code, signal) => { process.exitCode = code ?? (signal === null ? 1 : 128) })
}
