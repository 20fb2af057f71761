// Starts the real node-fpm CLI from a config template, like php's FPM\Tester: placeholders
// {{ROOT}} (the fixture apps folder), {{DIR}} (a fresh temp dir), {{PORT}} / {{PORT2}} (free TCP ports).
// Logs are JSON lines on the child's stderr (not a TTY), collected for assertions.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const NODE = process.execPath
export const CLI = join(REPO, 'src/cli/main.ts')
export const APPS = join(REPO, 'test/fixtures/apps')

export interface LogLine { level: number, msg: string, pool?: string, [key: string]: unknown }

export interface FpmHandle {
  readonly child: ChildProcess
  readonly dir: string
  readonly port: number
  readonly port2: number
  /** Every stderr line so far, parsed when JSON. */
  readonly logs: LogLine[]
  readonly rawStderr: () => string
  /** Everything on stdout so far (V8's --trace-* output goes there). */
  readonly rawStdout: () => string
  waitForLog (pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  stop (signal?: NodeJS.Signals): Promise<number | null>
}

/** Linux: /proc/<pid>/status has the memory figures rssBytes reads. */
export const HAS_PROC = existsSync('/proc/self/status')

/** A process's resident memory (VmRSS: a server's worker threads included), in bytes. */
export function rssBytes (pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => { resolve(port) })
    })
  })
}

export function tempDir (): string {
  return mkdtempSync(join(tmpdir(), 'node-fpm-test-'))
}

/** Fills the placeholders of a config template. */
export function render (template: string, vars: { dir: string, port: number, port2: number, root?: string }): string {
  return template
    .replaceAll('{{ROOT}}', vars.root ?? APPS)
    .replaceAll('{{DIR}}', vars.dir)
    .replaceAll('{{PORT}}', String(vars.port))
    .replaceAll('{{PORT2}}', String(vars.port2))
}

/** Runs the CLI with `args` to completion (for -t, -v, bad options...). */
export async function runCli (args: string[], opts: { cwd?: string, timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(NODE, [CLI, ...args], { cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 20_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Writes the config, starts `node [nodeFlags] node-fpm -y conf`, resolves once it logged "ready to handle connections". */
export async function startFpm (template: string, opts: { root?: string, args?: string[], nodeFlags?: string[], readyTimeoutMs?: number } = {}): Promise<FpmHandle> {
  const dir = tempDir()
  const port = await freePort()
  const port2 = await freePort()
  const conf = join(dir, 'node-fpm.conf')
  writeFileSync(conf, render(template, { dir, port, port2, root: opts.root }))
  const child = spawn(NODE, [...(opts.nodeFlags ?? []), CLI, '-y', conf, ...(opts.args ?? [])], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: LogLine[] = []
  let raw = ''
  let rawOut = ''
  let partial = ''
  const waiters = new Set<() => void>()
  child.stderr!.on('data', (d: Buffer) => {
    raw += d.toString()
    partial += d.toString()
    let nl: number
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      try { logs.push(JSON.parse(line) as LogLine) } catch { logs.push({ level: 0, msg: line }) }
    }
    for (const w of waiters) w()
  })
  child.stdout!.on('data', (d: Buffer) => { rawOut += d.toString() })
  let exited = false
  child.once('exit', () => { exited = true; for (const w of waiters) w() })
  const handle: FpmHandle = {
    child,
    dir,
    port,
    port2,
    logs,
    rawStderr: () => raw,
    rawStdout: () => rawOut,
    async waitForLog (pred, timeoutMs = 10_000) {
      return await new Promise<LogLine>((resolve, reject) => {
        const check = (): void => {
          const found = logs.find(pred)
          if (found !== undefined) { done(); resolve(found); return }
          if (exited) { done(); reject(new Error(`node-fpm exited before the expected log line; stderr:\n${raw}`)) }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for a log line; stderr:\n${raw}`)) }, timeoutMs)
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    async stop (signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) { rmSync(dir, { recursive: true, force: true }); return child.exitCode }
      const closed = new Promise<number | null>((resolve) => child.once('exit', (c) => { resolve(c) }))
      child.kill(signal)
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      const code = await closed
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
      return code
    }
  }
  process.once('exit', () => { try { child.kill('SIGKILL') } catch {} })
  try {
    await handle.waitForLog((l) => l.msg === 'ready to handle connections', opts.readyTimeoutMs ?? 15_000)
  } catch (err) {
    await handle.stop('SIGKILL')
    throw err
  }
  return handle
}
