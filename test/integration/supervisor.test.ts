// The supervisor (src/master/supervisor.ts) with real processes and sockets: a server process that
// dies whole (SIGABRT from a handler, a V8 fatal heap error) is restarted on the same sockets, and a
// connection made meanwhile waits in the kernel's backlog instead of being refused; stop signals are
// forwarded (and escalated to SIGKILL when the server cannot exit); a crash loop makes the supervisor
// give up (70); a killed supervisor leaves no orphan; config and bind errors exit 78 at once; and
// --no-supervisor runs the server alone, as before.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { FcgiConnection, buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { REPO, freePort, runCli, startFpm, tempDir } from '../helpers/fpm-tester.ts'
import type { FpmHandle, LogLine } from '../helpers/fpm-tester.ts'

const APPS = join(REPO, 'test/fixtures/supervisor-apps')
const skipPosix = process.platform === 'win32' ? 'POSIX signals and passed sockets' : false

// pino's numeric levels
const WARN = 40
const INFO = 30
const FATAL = 60

function config (opts: { listen?: string, global?: string, pool?: string } = {}): string {
  return `[global]
log_level = notice
${opts.global ?? ''}

[www]
listen = ${opts.listen ?? '127.0.0.1:{{PORT}}'}
pm = static
pm.max_children = 2
root = {{ROOT}}
${opts.pool ?? ''}
`
}

async function get (address: string, script: string, opts: { timeoutMs?: number, query?: string } = {}): Promise<{ status: number, body: string }> {
  const params = buildCgiParams({ uri: `/${script}${opts.query ?? ''}`, scriptFilename: join(APPS, script) })
  const res = await fcgiRequest(address, { params }, { timeoutMs: opts.timeoutMs ?? 10_000, connectTimeoutMs: 5000 })
  return { status: res.status, body: res.body.toString() }
}

/** The pid of the process that serves `address` (pid.mjs). */
async function serverPid (address: string): Promise<number> {
  const res = await get(address, 'pid.mjs')
  assert.equal(res.status, 200, res.body)
  return Number(res.body)
}

/** A client that tries again for a few seconds: the pid that finally answered, and how long it took. */
async function retryServerPid (address: string, deadlineMs = 10_000): Promise<{ pid: number, tries: number, ms: number }> {
  const started = performance.now()
  for (let tries = 1; ; tries++) {
    try {
      return { pid: await serverPid(address), tries, ms: Math.round(performance.now() - started) }
    } catch (err) {
      if (performance.now() - started > deadlineMs) throw err
      await sleep(50)
    }
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function exited (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve) => child.once('exit', (code, signal) => { resolve({ code, signal }) }))
}

async function waitUntil (what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

const fromSupervisor = (fpm: FpmHandle) => (l: LogLine): boolean => l.pid === fpm.child.pid
const crashLine = /^server process (\d+) exited on signal 6 \(SIGABRT\) after \d+\.\d{6} seconds from start$/

describe('a server process that dies whole is restarted on the same sockets', { skip: skipPosix }, () => {
  let fpm: FpmHandle
  let address: string
  let parent: number
  let current: number

  before(async () => {
    fpm = await startFpm(config({ pool: 'pm.heap_limit = 32M' }), { root: APPS, args: ['--crash-limit', '10'] })
    address = `127.0.0.1:${fpm.port}`
    parent = fpm.child.pid!
    current = await serverPid(address)
  })

  after(async () => {
    assert.equal(await fpm.stop(), 0, fpm.rawStderr())
  })

  test('the server runs in a child of the supervisor, which logged its start', () => {
    assert.notEqual(current, parent)
    assert.ok(fpm.logs.some((l) => l.pid === parent && l.msg === `fpm is running, pid ${parent}`))
    assert.ok(fpm.logs.some((l) => l.pid === parent && l.msg === 'ready to handle connections'))
  })

  test('SIGABRT (process.kill from a handler): logged with the signal and uptime, the next requests get 200 from a new server process', async (t) => {
    const first = current
    await assert.rejects(get(address, 'abort.mjs'), 'the connection of the aborting request is lost')
    const back = await retryServerPid(address)
    t.diagnostic(`served again after ${back.ms} ms (${back.tries} tries)`)
    assert.notEqual(back.pid, first)
    assert.notEqual(back.pid, parent)
    assert.equal(alive(first), false, 'the aborted server process is gone')
    assert.ok(back.ms < 5000, `back in ${back.ms} ms`)
    const crash = fpm.logs.find((l) => fromSupervisor(fpm)(l) && crashLine.test(l.msg))
    assert.ok(crash !== undefined, fpm.rawStderr())
    assert.equal(crash.msg.match(crashLine)?.[1], String(first))
    assert.equal(crash.level, WARN)
    assert.ok(fpm.logs.some((l) => fromSupervisor(fpm)(l) && l.level === INFO &&
      l.msg === 'restarting the server process in 0.100 seconds (1 abnormal exit within 60 seconds, giving up at 10)'))
    assert.ok(fpm.logs.some((l) => fromSupervisor(fpm)(l) && l.msg === `server process ${back.pid} started`))
    // Requests are served as soon as one thread is up; "ready" waits for all the initial threads.
    await fpm.waitForLog((l) => fromSupervisor(fpm)(l) &&
      new RegExp(`^server process ${back.pid} is ready to handle connections, \\d+\\.\\d{6} seconds after the previous one exited$`).test(l.msg))
    assert.equal(fpm.child.exitCode, null, 'the supervisor still runs')
    current = back.pid
  })

  test('a connection made while no server process runs is not refused: the kernel backlog holds it until the restart', async (t) => {
    const first = current
    const readyLines = (): number => fpm.logs.filter((l) => / is ready to handle connections, /.test(l.msg)).length
    await assert.rejects(get(address, 'abort.mjs'))
    await fpm.waitForLog((l) => fromSupervisor(fpm)(l) && l.msg.startsWith(`server process ${first} exited on signal 6`))
    const before = readyLines()
    assert.equal(alive(first), false)
    const t0 = performance.now()
    const conn = await FcgiConnection.connect(address, { timeoutMs: 5000 })
    const connectMs = performance.now() - t0
    assert.equal(readyLines(), before, 'connected before any new server process was ready')
    try {
      const res = await conn.request({ params: buildCgiParams({ uri: '/pid.mjs', scriptFilename: join(APPS, 'pid.mjs') }) }, { keepConn: false, timeoutMs: 10_000 })
      const waited = performance.now() - t0
      t.diagnostic(`connected in ${connectMs.toFixed(1)} ms while down, answered after ${waited.toFixed(0)} ms`)
      assert.equal(res.status, 200)
      const pid = Number(res.body.toString())
      assert.notEqual(pid, first)
      // The restarted process says ready once all its initial threads are up, maybe after this answer.
      await fpm.waitForLog(() => readyLines() === before + 1)
      current = pid
    } finally {
      await conn.close()
    }
  })

  /** Attempts at the abort within this budget (about 0.8 s each). */
  const OOM_BUDGET_MS = 75_000
  test('a V8 fatal heap error (a huge array filled by index, node-runtime.md §3) costs a restart, not an outage', { timeout: 120_000 }, async (t) => {
    const first = current
    let aborted = false
    // Which of the two happens is V8's choice (about half of the attempts abort the process, measured
    // over fresh processes; fewer in a row on one process: up to 16 thread-only outcomes in a row were
    // seen here, and 25 once in CI, 2026-11-22).
    const t0 = performance.now()
    let attempt = 0
    while (!aborted && performance.now() - t0 < OOM_BUDGET_MS) {
      attempt++
      try {
        // V8 sometimes ends only the thread (ERR_WORKER_OUT_OF_MEMORY): a 502, the process lives on.
        const res = await get(address, 'oom.mjs', { timeoutMs: 30_000 })
        assert.equal(res.status, 502, res.body)
        t.diagnostic(`attempt ${attempt}: only the thread died (502)`)
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err
        aborted = true
        t.diagnostic(`attempt ${attempt}: the whole process aborted`)
      }
    }
    assert.ok(aborted, `the allocation aborted the process in one of ${attempt} attempts (${OOM_BUDGET_MS / 1000} s)`)
    const back = await retryServerPid(address)
    assert.notEqual(back.pid, first)
    assert.match(fpm.rawStderr(), /FATAL ERROR: .*(Allocation failed|heap limit|heap out of memory)/)
    assert.ok(fpm.logs.some((l) => fromSupervisor(fpm)(l) && l.msg.startsWith(`server process ${first} exited on signal 6 (SIGABRT)`)))
    current = back.pid
  })
})

describe('stopping', { skip: skipPosix }, () => {
  test('SIGTERM: the server process stops, the supervisor exits 0, the unix socket and the pid file are removed, no process is left', async () => {
    const fpm = await startFpm(config({ listen: '{{DIR}}/www.sock', global: 'pid = {{DIR}}/fpm.pid', pool: 'listen.mode = 0660' }), { root: APPS })
    try {
      const socket = join(fpm.dir, 'www.sock')
      const pidFile = join(fpm.dir, 'fpm.pid')
      const server = await serverPid(socket)
      assert.equal(readFileSync(pidFile, 'utf8'), String(fpm.child.pid), 'the pid file holds the supervisor\'s pid')
      assert.notEqual(server, fpm.child.pid)
      assert.equal(statSync(socket).mode & 0o777, 0o660, 'listen.mode applied by the supervisor')
      const t0 = performance.now()
      fpm.child.kill('SIGTERM')
      const { code, signal } = await exited(fpm.child)
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, fpm.rawStderr())
      assert.ok(performance.now() - t0 < 5000)
      assert.equal(alive(server), false, 'the server process is gone')
      assert.equal(existsSync(socket), false, 'the unix socket was removed')
      assert.equal(existsSync(pidFile), false, 'the pid file was removed')
      assert.ok(fpm.logs.some((l) => l.pid === server && l.msg === 'exiting, bye-bye!'))
      assert.equal(fpm.logs.filter((l) => /exited (on signal|with code [1-9])/.test(l.msg)).length, 0, 'no crash reported')
    } finally {
      await fpm.stop()
    }
  })

  test('SIGQUIT: forwarded, the request in flight finishes, then everything exits 0', async () => {
    const fpm = await startFpm(config(), { root: APPS })
    try {
      const address = `127.0.0.1:${fpm.port}`
      const server = await serverPid(address)
      const slow = get(address, 'slow.mjs', { query: '?ms=800' })
      await sleep(200)
      fpm.child.kill('SIGQUIT')
      assert.deepEqual(await slow, { status: 200, body: `slow ${server}` })
      assert.deepEqual(await exited(fpm.child), { code: 0, signal: null }, fpm.rawStderr())
      assert.equal(alive(server), false)
      assert.ok(fpm.logs.some((l) => l.pid === server && l.msg === 'Finishing ... received, finishing gracefully'))
    } finally {
      await fpm.stop()
    }
  })

  test('SIGINT to both processes at once (Ctrl-C in a terminal, systemd\'s default KillMode) stops cleanly, once', async () => {
    const fpm = await startFpm(config(), { root: APPS })
    try {
      const server = await serverPid(`127.0.0.1:${fpm.port}`)
      process.kill(server, 'SIGINT')
      fpm.child.kill('SIGINT')
      assert.deepEqual(await exited(fpm.child), { code: 0, signal: null }, fpm.rawStderr())
      assert.equal(alive(server), false)
      assert.equal(fpm.logs.filter((l) => l.msg === 'exiting, bye-bye!').length, 1, fpm.rawStderr())
    } finally {
      await fpm.stop()
    }
  })

  test('a server process stuck in a system call (process.exit cannot end it) is SIGKILLed after process_control_timeout', async (t) => {
    const dir = tempDir()
    const fifo = join(dir, 'fifo')
    try {
      execFileSync('mkfifo', [fifo])
    } catch {
      t.skip('no mkfifo')
      return
    }
    const mark = join(dir, 'mark')
    const fpm = await startFpm(config({ global: 'process_control_timeout = 1s', pool: `env[FIFO] = ${fifo}\nenv[MARK] = ${mark}` }), { root: APPS })
    try {
      const address = `127.0.0.1:${fpm.port}`
      const server = await serverPid(address)
      const stuck = get(address, 'block.mjs').catch(() => null)
      await waitUntil('the handler is blocked', () => existsSync(mark))
      const t0 = performance.now()
      fpm.child.kill('SIGTERM')
      const { code } = await exited(fpm.child)
      const ms = performance.now() - t0
      t.diagnostic(`the supervisor exited ${ms.toFixed(0)} ms after SIGTERM`)
      assert.equal(code, 128 + 9, 'the status of a server process ended by SIGKILL')
      assert.ok(ms >= 900 && ms < 5000, `${ms} ms`)
      assert.equal(alive(server), false, 'no orphan')
      assert.ok(fpm.logs.some((l) => fromSupervisor(fpm)(l) && l.level === WARN &&
        l.msg === `server process ${server} still running 1.000 seconds after SIGTERM, sending SIGKILL`), fpm.rawStderr())
      await stuck
    } finally {
      await fpm.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('SIGKILL of the supervisor: the server process notices and exits, leaving no orphan', async () => {
    const fpm = await startFpm(config(), { root: APPS })
    try {
      const server = await serverPid(`127.0.0.1:${fpm.port}`)
      const parent = fpm.child.pid!
      fpm.child.kill('SIGKILL')
      await exited(fpm.child)
      await waitUntil('the server process exited', () => !alive(server))
      assert.ok(fpm.logs.some((l) => l.pid === server && l.msg === `the supervisor (pid ${parent}) is gone, exiting`), fpm.rawStderr())
    } finally {
      await fpm.stop()
    }
  })
})

describe('giving up', { skip: skipPosix }, () => {
  test('a crash loop (every request aborts the process) makes the supervisor give up: status 70 and a clear message', { timeout: 60_000 }, async (t) => {
    const fpm = await startFpm(config(), { root: APPS, args: ['--crash-limit', '3', '--crash-interval', '60'] })
    try {
      const address = `127.0.0.1:${fpm.port}`
      const t0 = performance.now()
      let requests = 0
      // The hammering client: every request it gets through kills the server process.
      while (fpm.child.exitCode === null && performance.now() - t0 < 30_000) {
        requests++
        await get(address, 'abort.mjs', { timeoutMs: 5000 }).catch(() => null)
        await sleep(20)
      }
      const { code } = await exited(fpm.child)
      const ms = performance.now() - t0
      t.diagnostic(`gave up after ${ms.toFixed(0)} ms and ${requests} requests`)
      assert.equal(code, 70, fpm.rawStderr())
      const crashes = fpm.logs.filter((l) => fromSupervisor(fpm)(l) && crashLine.test(l.msg))
      assert.equal(crashes.length, 3)
      const fatal = fpm.logs.find((l) => fromSupervisor(fpm)(l) && l.level === FATAL)
      assert.equal(fatal?.msg, 'the server process exited abnormally 3 times within 60 seconds (--crash-limit 3 --crash-interval 60): giving up')
      assert.ok(fpm.logs.some((l) => l.msg === 'restarting the server process in 0.200 seconds (2 abnormal exits within 60 seconds, giving up at 3)'), 'the backoff doubles')
      for (const l of crashes) assert.equal(alive(Number(crashLine.exec(l.msg)?.[1])), false)
    } finally {
      await fpm.stop()
    }
  })
})

describe('start-up failures exit at once, without starting a server process', { skip: skipPosix }, () => {
  test('a configuration error: 78', async () => {
    const dir = tempDir()
    const conf = join(dir, 'bad.conf')
    writeFileSync(conf, '[www]\nlisten = 127.0.0.1:9\npm = sometimes\nroot = /tmp\n')
    const r = await runCli(['-y', conf])
    rmSync(dir, { recursive: true, force: true })
    assert.equal(r.code, 78, r.stderr)
    assert.match(r.stderr, /FPM initialization failed/)
    assert.doesNotMatch(r.stderr, /server process/)
  })

  test('an address in use: 78, with the pool and the address, and no pid file left', async () => {
    const dir = tempDir()
    const port = await freePort()
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve))
    try {
      const conf = join(dir, 'fpm.conf')
      writeFileSync(conf, `[global]\npid = ${join(dir, 'fpm.pid')}\n[www]\nlisten = 127.0.0.1:${port}\npm = static\npm.max_children = 1\nroot = ${APPS}\n`)
      const r = await runCli(['-y', conf])
      assert.equal(r.code, 78, r.stderr)
      assert.match(r.stderr, new RegExp(`\\[pool www\\] unable to bind listening socket for address '127\\.0\\.0\\.1:${port}': Address already in use`))
      assert.match(r.stderr, /FPM initialization failed/)
      assert.doesNotMatch(r.stderr, /server process/)
      assert.equal(existsSync(join(dir, 'fpm.pid')), false)
    } finally {
      taken.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('--no-supervisor', { skip: skipPosix }, () => {
  test('the server runs in the process itself, and a fatal abort ends it for good', async () => {
    const fpm = await startFpm(config(), { root: APPS, args: ['--no-supervisor'] })
    try {
      const address = `127.0.0.1:${fpm.port}`
      assert.equal(await serverPid(address), fpm.child.pid)
      assert.ok(fpm.logs.some((l) => l.msg === `fpm is running, pid ${fpm.child.pid}`))
      await assert.rejects(get(address, 'abort.mjs'))
      assert.deepEqual(await exited(fpm.child), { code: null, signal: 'SIGABRT' })
      await assert.rejects(get(address, 'pid.mjs'), /ECONNREFUSED/, 'nothing restarted it')
      assert.equal(fpm.logs.filter((l) => /server process/.test(l.msg)).length, 0)
    } finally {
      await fpm.stop()
    }
  })
})
