// Runs `node-fpm request` alone, as a child process would run the real bin: a commander program
// holding only the request subcommand (src/cli/main.ts wires the same function into node-fpm).
// Usage: node test/helpers/run-request-cli.ts request ADDRESS [URI] [options]
// Commander usage errors exit 64, as in src/cli/main.ts.

import { Command, CommanderError } from 'commander'
import { registerRequestCommand } from '../../src/cli/request-command.ts'

const program = new Command('node-fpm').exitOverride()
registerRequestCommand(program)
for (const cmd of program.commands) cmd.exitOverride()
try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (!(err instanceof CommanderError)) throw err
  process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 64
}
