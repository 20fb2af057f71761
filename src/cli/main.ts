// The `node-fpm` command (php-fpm's letters: -y -p -g -t/-tt -F -D -O -R -v -h) plus the
// `request` subcommand. The only module allowed to end the process: it maps outcomes to exit
// statuses (sysexits, as php-fpm: 0 ok, 64 usage, 70 software, 78 configuration).

import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { loadConfig, dumpConfig } from '../config/index.ts'
import { createLogger } from '../log/logger.ts'
import { Master } from '../master/master.ts'
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
  const master = new Master(config, log)
  try {
    await master.start({ pidFile: opts.pid ?? null })
  } catch (err) {
    if (isFpmError(err)) log.fatal(err.message)
    else log.fatal({ err }, 'start-up failed')
    log.fatal('FPM initialization failed')
    process.exitCode = isFpmError(err) ? EXIT_CONFIG : EXIT_SOFTWARE
    return
  }
  master.installSignalHandlers((code) => {
    log.flush?.()
    process.exit(code) // eslint-disable-line n/no-process-exit
  })
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
}
