// The `node-fpm` command (php-fpm's letters: -y -p -g -t/-tt -F -D -O -R -v -h) plus the
// `request` and `bench` subcommands. It maps outcomes to exit statuses (master/exit-status.ts:
// sysexits, as php-fpm: 0 ok, 64 usage, 70 software, 78 configuration).
// By default the command is the supervisor (master/supervisor.ts), and the server runs in a child
// process of its own entry point (master/server-main.ts); --no-supervisor runs the server here.

import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { loadConfig, dumpConfig } from '../config/index.ts'
import { createLogger } from '../log/logger.ts'
import { EXIT_CONFIG, EXIT_SOFTWARE, EXIT_USAGE, exitProcess, startFailed } from '../master/exit-status.ts'
import { SUPERVISOR_DEFAULTS, Supervisor } from '../master/supervisor.ts'
import { endEarlyServerProcess } from '../master/server-process.ts'
import { registerRequestCommand } from './request-command.ts'
import { registerBenchCommand } from './bench-command.ts'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

interface MainOptions {
  fpmConfig?: string
  prefix?: string
  pid?: string
  test: number
  nodaemonize?: boolean
  daemonize?: boolean
  forceStderr?: boolean
  allowToRunAsRoot?: boolean
  supervisor: boolean
  crashLimit: number
  crashInterval: number
}

function positiveInteger (value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer')
  return Number(value)
}

function buildProgram (): Command {
  const program = new Command('node-fpm')
  program
    .description('FastCGI process manager for JavaScript: php-fpm\'s pools, config and operations, running fetch(request, env, ctx) handlers in worker threads')
    .version(`node-fpm ${pkg.version} (Node ${process.version})`, '-v, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .option('-y, --fpm-config <file>', 'php-fpm style main config file (its include= lines pull the pool files); default: the pools in ./pools.d/*.conf')
    .option('-p, --prefix <dir>', 'prefix for relative paths (pid, logs, includes, root, handler, unix sockets); default: the current directory')
    .option('-g, --pid <file>', 'write the process id to this file (removed on exit); overrides the pid directive')
    .option('-t, --test', 'test the configuration and exit (-tt also dumps the effective configuration)', (_v: unknown, previous: number) => previous + 1, 0)
    .option('-F, --nodaemonize', 'stay in the foreground (the default and only mode; accepted for php-fpm compatibility)')
    .addOption(new Option('-D, --daemonize', 'not supported: node-fpm runs in the foreground; use systemd or another supervisor'))
    .option('-O, --force-stderr', 'log to stderr (the default error_log)')
    .option('-R, --allow-to-run-as-root', 'accepted for php-fpm compatibility (threads have no separate user)')
    .option('--no-supervisor', 'run the server in this process, without the supervisor parent that restarts it when the whole process dies (a V8 fatal error, SIGKILL...)')
    .option('--crash-limit <count>', 'supervisor: give up (exit 70) when the server process exits abnormally this many times within --crash-interval', positiveInteger, SUPERVISOR_DEFAULTS.crashLimit)
    .option('--crash-interval <seconds>', 'supervisor: the window of --crash-limit', positiveInteger, SUPERVISOR_DEFAULTS.crashIntervalMs / 1000)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .action(async (opts: MainOptions) => { await run(opts) })
  registerRequestCommand(program)
  registerBenchCommand(program)
  for (const cmd of program.commands) cmd.exitOverride()
  return program
}

async function run (opts: MainOptions): Promise<void> {
  if (opts.daemonize === true) {
    process.stderr.write('ERROR: node-fpm does not daemonize (-D): run it in the foreground under systemd or another supervisor\n')
    process.exitCode = EXIT_USAGE
    return
  }
  const result = loadConfig({
    configFile: opts.fpmConfig ?? null,
    prefix: opts.prefix ?? null,
    cwd: process.cwd(),
    env: process.env,
    test: opts.test > 0
  })
  const where = opts.fpmConfig ?? `${opts.prefix ?? process.cwd()}/pools.d/*.conf`
  if (opts.test > 0) {
    for (const n of result.notices) process.stderr.write(`${n.level.toUpperCase()}: ${n.message}\n`)
    if (!result.ok) {
      for (const e of result.errors) process.stderr.write(`ERROR: ${e.message}\n`)
      process.stderr.write(`ERROR: configuration file ${where} test failed\n`)
      process.exitCode = EXIT_CONFIG
      return
    }
    if (opts.test > 1) for (const line of dumpConfig(result.config)) process.stderr.write(`NOTICE: ${line}\n`)
    process.stderr.write(`NOTICE: configuration file ${where} test is successful\n`)
    return
  }
  if (!result.ok) {
    for (const n of result.notices) process.stderr.write(`${n.level.toUpperCase()}: ${n.message}\n`)
    for (const e of result.errors) process.stderr.write(`ERROR: ${e.message}\n`)
    process.stderr.write('ERROR: FPM initialization failed\n')
    process.exitCode = EXIT_CONFIG
    return
  }
  const config = result.config
  const log = createLogger({ level: config.global.logLevel, errorLog: opts.forceStderr === true ? 'stderr' : config.global.errorLog })
  for (const n of result.notices) log[n.level === 'warning' ? 'warn' : 'info'](n.message)
  if (!opts.supervisor) {
    // Imported here: the supervisor process never loads the pools (piscina, worker code).
    const { serve } = await import('../master/serve.ts')
    await serve(config, log, { pidFile: opts.pid ?? null })
    return
  }
  const supervisor = new Supervisor({
    config,
    log,
    pidFile: opts.pid ?? config.global.pid,
    args: process.argv.slice(2),
    forceStderr: opts.forceStderr === true,
    crashLimit: opts.crashLimit,
    crashIntervalMs: opts.crashInterval * 1000
  })
  let code: number
  try {
    code = await supervisor.run()
  } catch (err) {
    startFailed(log, err)
    return
  }
  exitProcess(log, code)
}

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // help and version print and exit 0; every other commander error is a usage error (php: 64)
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : EXIT_USAGE
  } else {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = EXIT_SOFTWARE
  }
} finally {
  // A server process bin/node-fpm.js started for a supervisor that this run did not become.
  endEarlyServerProcess()
}
