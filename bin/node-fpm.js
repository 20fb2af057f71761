#!/usr/bin/env node
// The installed `node-fpm` command. The sources are TypeScript that Node runs by type stripping:
// on by default from Node 22.18 / 23.6; Node 22.12-22.17 need --experimental-strip-types, so there
// the command starts itself again with the flag (worker threads inherit it). npm scripts run on
// the pinned Node 24 (the node@24 devDependency).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
if (process.features.typescript) {
  await import(main)
} else {
  const child = spawn(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', main, ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']) {
    process.on(sig, () => { child.kill(sig) })
  }
  child.on('exit', (code, signal) => { process.exitCode = code ?? (signal === null ? 1 : 128) })
}
