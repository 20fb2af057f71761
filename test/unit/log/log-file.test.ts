// LogFile (src/log/log-file.ts) on real files: lines in order and complete, byte-exact latin1,
// php's open error, reopen after a rename (logrotate) and a failed reopen that keeps the old file,
// write errors (/dev/full) reported once per episode and again when writes work, close(), and the
// synchronous flush at process.exit().

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LogFile, reopenLogFiles } from '../../../src/log/log-file.ts'

const skipPosix = process.platform === 'win32' ? 'POSIX files (/dev/full, symlinks, modes)' : false

describe('LogFile', { skip: skipPosix }, () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'node-fpm-logfile-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('appends whole lines in order, none lost, without blocking the caller', async () => {
    const path = join(dir, 'order.log')
    const file = LogFile.open(path, { kind: 'access log' })
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const expected: string[] = []
    for (let i = 0; i < 5000; i++) {
      const line = `line ${i} ${'x'.repeat(i % 97)}\n`
      expected.push(line)
      file.write(line)
    }
    // Nothing is written synchronously: the lines are queued.
    assert.equal(readFileSync(path, 'utf8'), '')
    assert.ok(file.queuedChars > 0)
    // More lines while the first write is in flight: they join the next one.
    await new Promise((resolve) => setImmediate(resolve))
    for (let i = 5000; i < 6000; i++) {
      expected.push(`line ${i}\n`)
      file.write(`line ${i}\n`)
    }
    await file.flush()
    assert.equal(readFileSync(path, 'utf8'), expected.join(''))
    await file.close()
    assert.equal(file.write('late\n'), false)
  })

  it('appends to what the file held; latin1 lines are written byte for byte', async () => {
    const path = join(dir, 'bytes.log')
    const first = LogFile.open(path, { kind: 'access log', encoding: 'latin1' })
    first.write('caf\xc3\xa9 \xff\n') // UTF-8 bytes of "café", then a lone 0xFF
    await first.close()
    const second = LogFile.open(path, { kind: 'access log', encoding: 'latin1' })
    second.write('again\n')
    await second.close()
    assert.deepEqual(readFileSync(path), Buffer.concat([Buffer.from('café ', 'utf8'), Buffer.from([0xff, 0x0a]), Buffer.from('again\n')]))
  })

  it("cannot be opened: FPM_ERR_LOG_OPEN with php's words", () => {
    assert.throws(() => LogFile.open(join(dir, 'no/such/dir/x.log'), { kind: 'access log', owner: 'www' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FPM_ERR_LOG_OPEN')
      assert.match(err.message, /^\[pool www\] failed to open access log \(.*no\/such\/dir\/x\.log\): ENOENT/)
      return true
    })
    assert.throws(() => LogFile.open(join(dir, 'no/such/dir/e.log'), { kind: 'error log' }), /^FpmError: failed to open error_log \(/)
  })

  it('reopen() after a rename: later lines go to a new file at the path (reopenLogFiles: every open file)', async () => {
    const path = join(dir, 'rotate.log')
    const file = LogFile.open(path, { kind: 'access log' })
    file.write('before\n')
    await file.flush()
    renameSync(path, `${path}.1`)
    file.write('renamed, not reopened\n')
    await file.flush()
    assert.equal(existsSync(path), false)
    // A line queued (not yet written) when the signal comes goes to the new file.
    file.write('queued\n')
    const outcomes = reopenLogFiles().filter((o) => o.file === file)
    assert.deepEqual(outcomes.map((o) => o.error), [null])
    file.write('after\n')
    await file.close()
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'before\nrenamed, not reopened\n')
    assert.equal(readFileSync(path, 'utf8'), 'queued\nafter\n')
  })

  it('a reopen that fails keeps the file it had open, and says why', async () => {
    const sub = join(dir, 'sub')
    mkdirSync(sub)
    const path = join(sub, 'keep.log')
    const file = LogFile.open(path, { kind: 'access log', owner: 'a' })
    renameSync(sub, `${sub}.gone`)
    assert.throws(() => { file.reopen() }, /^FpmError: \[pool a\] failed to open access log \(.*keep\.log\): ENOENT/)
    file.write('still here\n')
    await file.close()
    assert.equal(readFileSync(join(`${sub}.gone`, 'keep.log'), 'utf8'), 'still here\n')
  })

  it('write errors: reported once per episode, then once when writes work again, with the lines lost', async () => {
    const link = join(dir, 'full.log')
    symlinkSync('/dev/full', link) // every write: ENOSPC
    const events: Array<{ err: string | null, lost: number }> = []
    const file = LogFile.open(link, { kind: 'access log', onError: (_f, err, lost) => { events.push({ err: (err as { code?: string } | null)?.code ?? null, lost }) } })
    file.write('one\n')
    await file.flush()
    file.write('two\n')
    file.write('three\n')
    await file.flush()
    assert.deepEqual(events, [{ err: 'ENOSPC', lost: 1 }])
    // The disk has room again (here: the path now leads to a file): the next write works.
    unlinkSync(link)
    file.reopen()
    file.write('four\n')
    await file.flush()
    // 'two' and 'three' went out in one write: 3 lines lost in 2 writes.
    assert.deepEqual(events, [{ err: 'ENOSPC', lost: 1 }, { err: null, lost: 3 }])
    await file.close()
    assert.equal(readFileSync(link, 'utf8'), 'four\n')
  })

  it('process.exit() right after write(): the queued lines are written synchronously at exit', () => {
    const path = join(dir, 'exit.log')
    const module = fileURLToPath(new URL('../../../src/log/log-file.ts', import.meta.url))
    const script = `
      import { LogFile } from ${JSON.stringify(module)}
      const file = LogFile.open(${JSON.stringify(path)}, { kind: 'access log' })
      for (let i = 0; i < 1000; i++) file.write('line ' + i + '\\n')
      process.exit(3)
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(r.status, 3, r.stderr)
    const text = readFileSync(path, 'utf8')
    assert.equal(text, Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join(''))
  })
})
