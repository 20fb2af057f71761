// Option parsing shared by the bench scripts (commander): whole-number options, node flags, and parsing that
// turns --help and bad options into exit statuses instead of a throw.

import { CommanderError, InvalidArgumentError, type Command } from 'commander'

/** A commander option parser: a whole number >= `min`, else "NAME must be a whole number >= MIN". */
export function wholeNumber (name: string, min: number) {
  return (v: string): number => {
    const n = Number(v)
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`)
    return n
  }
}

/** A commander option parser: comma-separated whole numbers >= `min`, duplicates dropped. */
export function wholeNumberList (name: string, min: number) {
  const one = wholeNumber(name, min)
  return (v: string): number[] => [...new Set(v.split(',').map(s => one(s)))]
}

/**
 * Parses process.argv with `program` (set up with exitOverride()); null when commander already
 * answered (help: exit status 0; a bad option: 2, the bench could not run).
 */
export function parseOptions<T extends object> (program: Command): T | null {
  try {
    program.parse(process.argv)
    return program.opts<T>()
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 2
    return null
  }
}

/** Node options given as one argument: its space-separated words. */
export function nodeFlagWords (v: string): string[] {
  return v.split(' ').filter(w => w !== '')
}

/** `--accept main|threads`: node-fpm's pm.accept for the bench pools. */
export function acceptMode (v: string): 'main' | 'threads' {
  if (v === 'main' || v === 'threads') return v
  throw new InvalidArgumentError(`--accept takes main or threads; got '${v}'`)
}
