// The `node-fpm` command (php-fpm's letters: -y -p -g -t/-tt -F -D -O -R -v -h) plus the
// `request` subcommand. The only module allowed to end the process: it maps outcomes to exit
// statuses (sysexits, as php-fpm: 0 ok, 64 usage, 70 software, 78 configuration).
// By default the command is the supervisor (master/supervisor.ts), and the server runs in a child
// process started from this same module; --no-supervisor runs the server here.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { loadConfig, dumpConfig } from '../config/index.ts'
import type { FpmConfig } from '../config/types.ts'
import { createLogger, type Logger } from '../log/logger.ts'
import { installReopenSignal } from '../log/reopen-signal.ts'
import { SUPERVISOR_DEFAULTS, Supervisor, isSupervisedServer, onSupervisorGone, receiveStart, reportReady, type ServerStart } from '../master/supervisor.ts'
import { endEarlyServerProcess } from '../master/server-process.ts'
import { isFpmError } from '../common/errors.ts'
import { registerRequestCommand } from './request-command.ts'
import { registerBenchCommand } from './bench-command.ts'

const EXIT_USAGE = 64
const EXIT_SOFTWARE = 70
const EXIT_CONFIG = 78

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
    // A supervised server process has the supervisor's arguments, which the supervisor reports on.
    .configureOutput(isSupervisedServer()
      ? { writeOut: () => {}, writeErr: () => {} }
      : { writeErr: (s) => process.stderr.write(s) })
    .action(async (opts: MainOptions) => { await run(opts) })
  registerRequestCommand(program)
  registerBenchCommand(program)
  for (const cmd of program.commands) cmd.exitOverride()
  return program
}

async function run (opts: MainOptions): Promise<void> {
  if (isSupervisedServer()) {
    await runSupervisedServer()
    return
  }
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
    await serve(config, log, { pidFile: opts.pid ?? null })
    return
  }
  const supervisor = new Supervisor({
    config,
    log,
    pidFile: opts.pid ?? config.global.pid,
    entry: fileURLToPath(import.meta.url),
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
  exit(log, code)
}

/**
 * Starts the pools and their listeners in this process, which then serves until a stop signal.
 * Resolves false (exit status set) when the start failed.
 */
async function serve (config: FpmConfig, log: Logger, opts: { pidFile: string | null }, supervised?: ServerStart): Promise<boolean> {
  // SIGUSR1 reopens the log files (logrotate). First: until a listener exists, Node's default for
  // SIGUSR1 is to start the inspector.
  installReopenSignal(log)
  // Imported here: the supervisor process never loads the pools (piscina, worker code).
  const { Master } = await import('../master/master.ts')
  const master = new Master(config, log)
  try {
    await master.start(supervised === undefined ? opts : { ...opts, supervised: true, listenFds: supervised.listenFds, threadFds: supervised.threadFds })
  } catch (err) {
    startFailed(log, err)
    return false
  }
  master.installSignalHandlers((code) => { exit(log, code) }, { supervised: supervised !== undefined })
  if (supervised !== undefined) {
    onSupervisorGone(() => {
      // The parent was killed (SIGKILL...): do not live on as an orphan holding the sockets.
      log.error(`the supervisor (pid ${supervised.supervisorPid}) is gone, exiting`)
      setTimeout(() => { process.kill(process.pid, 'SIGKILL') }, supervised.stopTimeoutMs).unref()
      master.stop(false).then(() => { exit(log, 1) }, () => { exit(log, 1) })
    })
  }
  return true
}

/** The server process started by the supervisor: config and sockets come from it, over IPC. */
async function runSupervisedServer (): Promise<void> {
  let start: ServerStart
  try {
    start = await receiveStart()
  } catch {
    // Started early by a run that does not supervise after all, or a supervisor that died: nothing to report to.
    process.exitCode = EXIT_SOFTWARE
    return
  }
  const config = start.config
  const log = createLogger({ level: config.global.logLevel, errorLog: start.forceStderr ? 'stderr' : config.global.errorLog })
  if (await serve(config, log, { pidFile: null }, start)) reportReady()
  else exit(log, Number(process.exitCode))
}

function startFailed (log: Logger, err: unknown): void {
  if (isFpmError(err)) log.fatal(err.message)
  else log.fatal({ err }, 'start-up failed')
  log.fatal('FPM initialization failed')
  process.exitCode = isFpmError(err) ? EXIT_CONFIG : EXIT_SOFTWARE
}

function exit (log: Logger, code: number): never {
  log.flush?.()
  process.exit(code) // eslint-disable-line n/no-process-exit
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
