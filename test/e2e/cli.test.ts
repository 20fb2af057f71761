// The `node-fpm` command as a process: its options and exit statuses (sysexits, as php-fpm: 0 ok,
// 64 usage, 78 configuration), -t/-tt, the default configuration that `npm start` serves (the
// repository's pools.d/www.conf under -p), the `request` subcommand's exit statuses (0 / 1 / 2),
// SIGTERM (exit 0, unix socket and pid file removed), and the server process that bin/node-fpm.js
// starts before the supervisor has loaded anything (used when it supervises, ended when it does not).

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FcgiConnection, buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { NODE, REPO, freePort, runCli, tempDir } from '../helpers/fpm-tester.ts'

const BIN = join(REPO, 'bin/node-fpm.js')
const EXAMPLES = join(REPO, 'examples')
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }

/** Runs the installed entry point (bin/node-fpm.js, what `npx node-fpm` runs). */
async function runBin (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(NODE, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

describe('options', () => {
  test('-v prints the version', async () => {
    for (const flag of ['-v', '--version']) {
      const r = await runCli([flag])
      assert.equal(r.code, 0, flag)
      assert.match(r.stdout, new RegExp(`^node-fpm ${pkg.version.replaceAll('.', '\\.')} \\(Node v\\d+\\.\\d+\\.\\d+\\)\\n$`), flag)
    }
  })

  test('-h lists every option and the request command', async () => {
    const r = await runCli(['-h'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^Usage: node-fpm \[options\]/)
    for (const option of ['-y, --fpm-config <file>', '-p, --prefix <dir>', '-g, --pid <file>', '-t, --test', '-F, --nodaemonize',
      '-D, --daemonize', '-O, --force-stderr', '-R, --allow-to-run-as-root', '-v, --version', '-h, --help', 'request [options] <address> [uri]']) {
      assert.ok(r.stdout.includes(option), `-h lists ${option}`)
    }
    const sub = await runCli(['request', '-h'])
    assert.equal(sub.code, 0)
    for (const option of ['--script <file>', '--root <dir>', '-X, --method', '-H, --header', '-d, --data', '--param', '-i, --include', 'Exit status:']) {
      assert.ok(sub.stdout.includes(option), `request -h lists ${option}`)
    }
  })

  test('an unknown option exits 64 with the usage', async () => {
    const r = await runCli(['--bogus'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /unknown option '--bogus'/)
    assert.match(r.stderr, /Usage: node-fpm \[options\]/)
    assert.equal(r.stdout, '')
    const sub = await runCli(['request'])
    assert.equal(sub.code, 64, 'request without an address is a usage error')
    assert.match(sub.stderr, /missing required argument 'address'/)
  })

  test('-D is refused: node-fpm does not daemonize (64)', async () => {
    const r = await runCli(['-D', '-y', '/nonexistent/node-fpm/never-read.conf'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /does not daemonize/)
  })
})

describe('-t / -tt', () => {
  let dir: string
  before(() => { dir = tempDir() })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  test('-t on the repository\'s default pools (./pools.d/*.conf) is successful', async () => {
    const r = await runCli(['-t'], { cwd: REPO })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /NOTICE: configuration file .*pools\.d\/\*\.conf test is successful\n$/)
    assert.doesNotMatch(r.stderr, /ERROR/)
  })

  test('-t with a broken configuration exits 78 and prints every error with its [file:line] or [pool name]', async () => {
    const file = join(dir, 'broken.conf')
    writeFileSync(file, [
      '[global]', //                          1
      'log_level = chatty', //                2: bad value
      '[good]', //                            3
      'listen = 127.0.0.1:9999', //           4
      'bogus_entry = 1', //                   5: unknown entry
      'pm = sometimes', //                    6: bad pm
      'pm.max_children = 2', //               7
      `root = ${EXAMPLES}`, //                8
      '[second]', //                          9: no listen, no children, a missing root
      'pm = static', //                       10
      'pm.max_children = 0', //               11
      'root = /nonexistent/node-fpm/root', // 12
      ''
    ].join('\n'))
    const r = await runCli(['-t', '-y', file])
    assert.equal(r.code, 78, r.stderr)
    const expected = [
      `ERROR: [${file}:2] unable to parse value for entry 'log_level'`,
      `ERROR: [${file}:5] unknown entry 'bogus_entry'`,
      `ERROR: [${file}:6] unable to parse value for entry 'pm'`,
      'ERROR: [pool second] no listen address',
      'ERROR: [pool second] pm.max_children must be a positive value',
      "ERROR: [pool second] the root '/nonexistent/node-fpm/root' does not exist"
    ]
    for (const line of expected) assert.ok(r.stderr.includes(line), `missing: ${line}\n--- stderr ---\n${r.stderr}`)
    assert.match(r.stderr, /ERROR: configuration file .*broken\.conf test failed\n$/)
    assert.doesNotMatch(r.stderr, /test is successful/)
  })

  test('-tt dumps the effective configuration, then succeeds', async () => {
    const r = await runCli(['-tt'], { cwd: REPO })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stderr.split('\n')
    for (const line of ['NOTICE: [global]', 'NOTICE: [www]', 'NOTICE: \tlisten = 127.0.0.1:9000', 'NOTICE: \tpm = static',
      'NOTICE: \tpm.max_children = 2', `NOTICE: \troot = ${EXAMPLES}`]) {
      assert.ok(lines.includes(line), `-tt prints ${JSON.stringify(line)}`)
    }
    assert.ok(lines.indexOf('NOTICE: [global]') < lines.indexOf('NOTICE: [www]'))
    assert.match(r.stderr, /test is successful\n$/)
    const once = await runCli(['-t'], { cwd: REPO })
    assert.doesNotMatch(once.stderr, /NOTICE: \[www\]/, 'a single -t does not dump')
  })
})

describe('the default configuration served (npm start, with -p a prefix holding a copy of pools.d/www.conf)', () => {
  let prefix: string
  let port: number
  let server: ChildProcess
  let stderr = ''
  let exit: Promise<number | null>
  const socket = (): string => join(prefix, 'www-sock.sock')
  const pidFile = (): string => join(prefix, 'node-fpm.pid')

  before(async () => {
    prefix = tempDir()
    port = await freePort()
    mkdirSync(join(prefix, 'pools.d'))
    const www = readFileSync(join(REPO, 'pools.d/www.conf'), 'utf8')
    const conf = www
      .replace(/^listen = 127\.0\.0\.1:9000$/m, `listen = 127.0.0.1:${port}`)
      .replace(/^root = examples$/m, `root = ${EXAMPLES}`)
    assert.notEqual(conf, www)
    assert.match(conf, new RegExp(`^listen = 127\\.0\\.0\\.1:${port}$`, 'm'), 'the listen line was replaced')
    assert.match(conf, new RegExp(`^root = ${EXAMPLES}$`, 'm'), 'the root line was replaced')
    writeFileSync(join(prefix, 'pools.d/www.conf'), conf)
    // A second pool on a unix socket, relative to the prefix.
    writeFileSync(join(prefix, 'pools.d/sock.conf'), `[www-sock]\nlisten = www-sock.sock\npm = ondemand\npm.max_children = 1\nroot = ${EXAMPLES}\n`)
    // A third whose threads accept the connections themselves (pm.accept = threads): its code is a
    // separate chunk of the build's thread bundle (dist/thread/).
    writeFileSync(join(prefix, 'pools.d/threads.conf'), `[www-threads]\nlisten = www-threads.sock\npm = static\npm.max_children = 1\npm.accept = threads\nroot = ${EXAMPLES}\n`)
    // What `npm start` runs: bin/node-fpm.js, on the build in dist/ (npm test builds it first), so
    // these tests also prove the built server and its threads (bundled: dist/main/, dist/thread/) run without type stripping.
    assert.ok(existsSync(join(REPO, 'dist/main/main.js')) && existsSync(join(REPO, 'dist/thread/entry.js')), 'npm run build made dist/')
    // cwd elsewhere: relative paths (the unix socket, pools.d) must come from -p.
    server = spawn(NODE, [BIN, '-p', prefix, '-g', pidFile()], { cwd: tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] })
    exit = new Promise((resolve) => server.once('exit', (code) => { resolve(code) }))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`node-fpm did not start:\n${stderr}`)) }, 15_000)
      server.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
        if (stderr.includes('ready to handle connections')) { clearTimeout(timer); resolve() }
      })
      server.once('exit', () => { clearTimeout(timer); reject(new Error(`node-fpm exited at start-up:\n${stderr}`)) })
    })
  })

  after(async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL')
      await exit
    }
    rmSync(prefix, { recursive: true, force: true })
  })

  test('node-fpm request prints the body of examples/hello.mjs and exits 0', async () => {
    const r = await runBin(['request', `127.0.0.1:${port}`, '/hello.mjs', '--script', join(EXAMPLES, 'hello.mjs')])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'Hello from node-fpm! You asked for /hello.mjs\n')
    assert.equal(r.stderr, '')
    const inc = await runCli(['request', `127.0.0.1:${port}`, '/info.ts?x=1', '--script', join(EXAMPLES, 'info.ts'), '-d', 'a=1', '--include'])
    assert.equal(inc.code, 0, inc.stderr)
    assert.match(inc.stdout, /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/json/)
    const json = JSON.parse(inc.stdout.slice(inc.stdout.indexOf('\r\n\r\n') + 4)) as { method: string, body: string, url: string }
    assert.equal(json.method, 'POST')
    assert.equal(json.body, 'a=1')
    assert.equal(new URL(json.url).search, '?x=1')
  })

  test('the built server\'s threads accept connections themselves (pm.accept = threads)', async () => {
    const r = await runCli(['request', join(prefix, 'www-threads.sock'), '/hello.mjs', '--script', join(EXAMPLES, 'hello.mjs')])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'Hello from node-fpm! You asked for /hello.mjs\n')
  })

  test('node-fpm request over the pool\'s unix socket (listen relative to the prefix)', async () => {
    assert.ok(statSync(socket()).isSocket(), 'the unix socket exists under the prefix')
    const r = await runCli(['request', socket(), '/hello.mjs', '--script', join(EXAMPLES, 'hello.mjs')])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'Hello from node-fpm! You asked for /hello.mjs\n')
  })

  test('node-fpm request of a missing script exits 1, with the 404 body and "Primary script unknown" on stderr', async () => {
    const r = await runCli(['request', `127.0.0.1:${port}`, '/nope.mjs', '--script', join(EXAMPLES, 'nope.mjs')])
    assert.equal(r.code, 1)
    assert.equal(r.stdout.trim(), 'File not found.')
    assert.equal(r.stderr, 'Primary script unknown\n')
  })

  test('node-fpm request against a closed port exits 2 with a one-line message', async () => {
    const closed = await freePort()
    const r = await runCli(['request', `127.0.0.1:${closed}`, '/hello.mjs', '--script', join(EXAMPLES, 'hello.mjs')])
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^node-fpm request: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/)
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  })

  test('SIGTERM stops the server: exit 0, the unix socket and the pid file are removed', async () => {
    assert.equal(readFileSync(pidFile(), 'utf8').trim(), String(server.pid), '-g wrote the pid')
    assert.ok(existsSync(socket()))
    // A kept-alive connection (as nginx's upstream keepalive holds) does not hold the shutdown.
    const conn = await FcgiConnection.connect(`127.0.0.1:${port}`)
    const res = await conn.request({ params: buildCgiParams({ uri: '/hello.mjs', scriptFilename: join(EXAMPLES, 'hello.mjs') }) })
    assert.equal(res.status, 200)
    assert.equal(conn.closed, false)
    const startedAt = Date.now()
    server.kill('SIGTERM')
    const timer = setTimeout(() => { server.kill('SIGKILL') }, 10_000)
    const code = await exit
    clearTimeout(timer)
    await conn.close()
    assert.ok(Date.now() - startedAt < 5000, `the shutdown took ${Date.now() - startedAt} ms`)
    assert.equal(code, 0, stderr)
    assert.equal(existsSync(socket()), false, 'the unix socket was removed')
    assert.equal(existsSync(pidFile()), false, 'the pid file was removed')
    assert.match(stderr, /Terminating/)
    assert.match(stderr, /exiting, bye-bye!/)
  })
})

/** Live processes (Linux /proc) whose parent is `ppid`. */
function childrenOf (ppid: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) pids.push(Number(entry))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

/** Live processes (Linux /proc) whose command line holds `marker`, other than this one. */
function processesWith (marker: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

async function eventually<T> (what: string, probe: () => T | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== null) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('the server process starts with the supervisor (bin/node-fpm.js)', { skip: process.platform !== 'linux' ? 'Linux /proc' : false }, () => {
  const APPS = join(REPO, 'test/fixtures/supervisor-apps')

  test('it runs before the supervisor has read its configuration (a FIFO), and serves what the supervisor then read and sent', async () => {
    const dir = tempDir()
    const conf = join(dir, 'fpm.conf')
    execFileSync('mkfifo', [conf])
    const sock = join(dir, 'fpm.sock')
    const supervisor = spawn(NODE, [BIN, '-y', conf], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    supervisor.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const exit = new Promise((resolve) => supervisor.once('exit', resolve))
    try {
      // Until the FIFO is written, the supervisor waits in its read of the configuration.
      const early = await eventually('a child of the supervisor', () => {
        const children = childrenOf(supervisor.pid!)
        return children.length === 1 ? children[0]! : null
      })
      await writeFile(conf, `[www]\nlisten = ${sock}\npm = static\npm.max_children = 1\npm.accept = threads\nroot = ${APPS}\n`)
      await eventually('ready to handle connections', () => stderr.includes('ready to handle connections') ? true : null)
      const params = buildCgiParams({ uri: '/pid.mjs', scriptFilename: join(APPS, 'pid.mjs') })
      const res = await fcgiRequest(sock, { params }, { timeoutMs: 10_000 })
      assert.equal(res.status, 200, stderr)
      assert.equal(Number(res.body.toString()), early, 'the early process serves, on the socket and the thread descriptor the supervisor sent')
      assert.deepEqual(childrenOf(supervisor.pid!), [early], 'no other server process')
    } finally {
      supervisor.kill('SIGTERM')
      await exit
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a run that does not supervise ends it: a configuration error (78), an unknown option (64), each reported once, nothing left', async () => {
    const dir = tempDir()
    const bad = join(dir, 'bad.conf')
    writeFileSync(bad, '[www]\nlisten = 127.0.0.1:9\npm = sometimes\nroot = /tmp\n')
    try {
      const config = await runBin(['-y', bad])
      assert.equal(config.code, 78, config.stderr)
      assert.equal(config.stderr.match(/FPM initialization failed/g)?.length, 1, config.stderr)
      assert.deepEqual(processesWith(bad), [], 'no server process left')
      const usage = await runBin(['-y', bad, '--bogus'])
      assert.equal(usage.code, 64, usage.stderr)
      assert.equal(usage.stderr.match(/unknown option '--bogus'/g)?.length, 1, usage.stderr)
      assert.deepEqual(processesWith(bad), [], 'no server process left')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('the server process takes nothing from its arguments: without the channel it says what it is (64); a channel closed before the start message ends it quietly (70)', async () => {
    // What bin/node-fpm.js and the supervisor start (master/server-process.ts), here with an argument the supervisor would refuse.
    const SERVER_MAIN = join(REPO, 'dist/main/server-main.js')
    const run = async (stdio: Array<'ignore' | 'pipe' | 'ipc'>): Promise<{ code: number | null, output: string }> => {
      const child = spawn(NODE, [SERVER_MAIN, '--bogus'], { stdio: stdio as never })
      let output = ''
      const ended = [child.stdout!, child.stderr!].map(async (stream) => {
        stream.on('data', (d: Buffer) => { output += d.toString() })
        await new Promise((resolve) => stream.once('close', resolve))
      })
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      // (no 'close' event for a child whose channel this side disconnected)
      if (child.connected) child.disconnect()
      const code = await exited
      await Promise.all(ended)
      return { code, output }
    }
    const byHand = await run(['ignore', 'pipe', 'pipe'])
    assert.equal(byHand.code, 64)
    assert.match(byHand.output, /^ERROR: this is the server process of a supervised node-fpm, started by the supervisor: run node-fpm\n$/)
    const orphan = await run(['ignore', 'pipe', 'pipe', 'ipc'])
    assert.equal(orphan.code, 70)
    assert.equal(orphan.output, '')
  })
})
