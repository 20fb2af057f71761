// Tests of compileAccessFormat (src/log/access-format.ts) against php's fpm_log.c (php-fpm.md
// §6.1-6.3): every specifier and modifier with exact output for one fixed request, printf's
// rounding, the default format and php's documented examples, the strftime conversions, php's
// parsing quirks, and every warning php prints for a bad format.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ACCESS_FIELD_LIMITS, compileAccessFormat, printfFixed } from '../../../src/log/access-format.ts'
import type { AccessEntry, AccessFormatter } from '../../../src/log/access-format.ts'
import { DEFAULT_ACCESS_FORMAT } from '../../../src/config/directives.ts'

const savedTz = process.env.TZ
before(() => { process.env.TZ = 'UTC' })
after(() => {
  if (savedTz === undefined) delete process.env.TZ
  else process.env.TZ = savedTz
})

const PARAMS: Record<string, string> = {
  REQUEST_URI: '/blog/post?id=7',
  HTTP_HOST: 'example.com',
  HTTP_USER_AGENT: 'curl/8.5.0',
  EMPTY: ''
}
const HEADERS: Record<string, string> = { 'Content-Type': 'text/html; charset=UTF-8', 'X-Empty': '' }

/** One finished request: 21 Nov 2026 10:11:12.345 UTC, 12.345 ms, 50% CPU, 2 MiB. */
const ENTRY: AccessEntry = {
  remoteAddr: '127.0.0.1',
  method: 'GET',
  uri: '/index.php',
  query: 'a=b',
  script: '/var/www/html/index.php',
  status: 200,
  startedAtMs: Date.UTC(2026, 10, 21, 10, 11, 12, 345),
  loggedAtMs: Date.UTC(2026, 10, 21, 10, 11, 13, 2),
  durationUs: 12_345,
  cpuPercent: 50,
  cpuUserPercent: 37.5,
  cpuSystemPercent: 12.5,
  memoryBytes: 2_097_152,
  contentLength: 0,
  responseHeaders: name => HEADERS[name],
  params: name => PARAMS[name],
  pool: 'www',
  pid: 27,
  user: 'alice'
}

function compile (format: string): AccessFormatter {
  const c = compileAccessFormat(format)
  assert.ok(c.ok, c.ok ? '' : `${format}: ${c.reason}`)
  return c.format
}

const render = (format: string, entry: Partial<AccessEntry> = {}): string => compile(format)({ ...ENTRY, ...entry })

describe('specifiers', () => {
  const cases: Array<[string, string]> = [
    ['%%', '%'],
    ['%C', '50.00'],
    ['%{total}C', '50.00'],
    ['%{user}C', '37.50'],
    ['%{system}C', '12.50'],
    ['%d', '0.012'],
    ['%{seconds}d', '0.012'],
    ['%{milliseconds}d', '12.345'],
    ['%{milli}d', '12.345'],
    ['%{miliseconds}d', '12.345'],
    ['%{mili}d', '12.345'],
    ['%{microseconds}d', '12345'],
    ['%{micro}d', '12345'],
    ['%{REQUEST_URI}e', '/blog/post?id=7'],
    ['%{HTTP_USER_AGENT}e', 'curl/8.5.0'],
    ['%{HTTP_REFERER}e', '-'],
    ['%{EMPTY}e', ''],
    ['%f', '/var/www/html/index.php'],
    ['%l', '0'],
    ['%m', 'GET'],
    ['%M', '2097152'],
    ['%{bytes}M', '2097152'],
    ['%{kilobytes}M', '2048'],
    ['%{kilo}M', '2048'],
    ['%{megabytes}M', '2'],
    ['%{mega}M', '2'],
    ['%n', 'www'],
    ['%{Content-Type}o', 'text/html; charset=UTF-8'],
    ['%{X-Powered-By}o', '-'],
    ['%{X-Empty}o', '-'],
    ['%p', '27'],
    ['%P', String(process.pid)],
    ['%q', 'a=b'],
    ['%Q', '?'],
    ['%r', '/index.php'],
    ['%R', '127.0.0.1'],
    ['%s', '200'],
    ['%t', '21/Nov/2026:10:11:12 +0000'],
    ['%{%Y-%m-%dT%H:%M:%S%z}t', '2026-11-21T10:11:12+0000'],
    ['%T', '21/Nov/2026:10:11:13 +0000'],
    ['%{%s}T', String(Math.floor(Date.UTC(2026, 10, 21, 10, 11, 13) / 1000))],
    ['%u', 'alice']
  ]
  for (const [format, expected] of cases) {
    it(`${format} → ${JSON.stringify(expected)}`, () => assert.equal(render(format), expected))
  }

  it('takes modifiers in any case (php uses strcasecmp)', () => {
    assert.equal(render('%{MILLI}d %{Micro}d %{TOTAL}C %{User}C %{KILO}M %{Mega}M'), '12.345 12345 50.00 37.50 2048 2')
  })

  it('prints -, empty or 0 for what a request lacks, as php does', () => {
    const none: Partial<AccessEntry> = {
      remoteAddr: '', method: '', uri: '', query: '', script: '', user: '', pool: '', contentLength: 0
    }
    assert.equal(render('[%R] [%m] [%r] [%q] [%Q] [%f] [%u] [%n] [%l]', none), '[-] [-] [] [] [] [-] [] [-] [0]')
  })

  it('%R: an IPv4-mapped IPv6 peer prints as IPv4, other IPv6 as is', () => {
    assert.equal(render('%R', { remoteAddr: '::ffff:172.17.0.4' }), '172.17.0.4')
    assert.equal(render('%R', { remoteAddr: '::1' }), '::1')
    assert.equal(render('%R', { remoteAddr: '2001:db8::ffff:1' }), '2001:db8::ffff:1')
  })

  it('cuts the values php keeps in fixed scoreboard fields (URI 127, query 511, method 15, script 255, user 31, pool 31)', () => {
    const long = 'x'.repeat(600)
    const out = render('%r|%q|%m|%f|%u|%n', { uri: '/' + long, query: long, method: long, script: '/' + long, user: long, pool: long }).split('|')
    assert.deepEqual(out.map(s => s.length), [127, 511, 15, 255, 31, 31])
    assert.equal(ACCESS_FIELD_LIMITS.uri, 127)
    // %{NAME}e reads the param itself: no cut.
    assert.equal(render('%{LONG}e', { params: () => long }).length, 600)
  })

  it('%M kilo and mega divide with truncation', () => {
    assert.equal(render('%M %{kilo}M %{mega}M', { memoryBytes: 3_145_727 }), '3145727 3071 2')
    assert.equal(render('%{kilo}M %{mega}M', { memoryBytes: 1023 }), '0 0')
  })

  it('%d: seconds and ms with %.3f, micro as an integer', () => {
    assert.equal(render('%d %{milli}d %{micro}d', { durationUs: 0 }), '0.000 0.000 0')
    assert.equal(render('%d %{milli}d %{micro}d', { durationUs: 181_812 }), '0.182 181.812 181812')
    assert.equal(render('%d %{milli}d %{micro}d', { durationUs: 3_600_000_001 }), '3600.000 3600000.001 3600000001')
    assert.equal(render('%d %{milli}d', { durationUs: 999_999 }), '1.000 999.999')
  })

  it("rounds exact ties to even like glibc's printf, where toFixed rounds up", () => {
    // 62500 µs = 0.0625 s exactly: printf("%.3f") gives 0.062.
    assert.equal(render('%d', { durationUs: 62_500 }), '0.062')
    assert.equal(render('%d', { durationUs: 187_500 }), '0.188')
    assert.equal(render('%d', { durationUs: 1_062_500 }), '1.062')
    assert.equal(render('%C %{user}C %{system}C', { cpuPercent: 0.125, cpuUserPercent: 0.375, cpuSystemPercent: 2.5 }), '0.12 0.38 2.50')
    assert.equal(printfFixed(0.0125, 3), '0.013') // not a tie: the double is above 0.0125
    assert.equal(printfFixed(1.005, 2), '1.00') // not a tie: the double is below 1.005
    assert.equal(printfFixed(5.5, 2), '5.50')
    assert.equal(printfFixed(-0.0625, 3), '-0.062')
    assert.equal(printfFixed(Number.POSITIVE_INFINITY, 2), 'inf')
  })

  it('%T is the time of writing: Date.now() unless the entry says', () => {
    const { loggedAtMs: _, ...entry } = ENTRY
    const first = Math.floor(Date.now() / 1000)
    const logged = Number(compile('%{%s}T')(entry))
    assert.ok(logged >= first && logged <= Math.floor(Date.now() / 1000))
  })
})

describe('the default format and php examples (php-fpm.md §6.1, §6.3)', () => {
  it(`default ${DEFAULT_ACCESS_FORMAT}: no brackets, and two spaces without an auth user`, () => {
    assert.equal(render(DEFAULT_ACCESS_FORMAT, { user: '' }), '127.0.0.1 -  21/Nov/2026:10:11:12 +0000 "GET /index.php" 200')
    assert.equal(render(DEFAULT_ACCESS_FORMAT), '127.0.0.1 - alice 21/Nov/2026:10:11:12 +0000 "GET /index.php" 200')
  })

  it("php's www.conf sample, in a +0100 zone", () => {
    process.env.TZ = 'Europe/London'
    try {
      const format = '%R - %u %t "%m %r%Q%q" %s %f %{milli}d %{kilo}M %C%%'
      assert.equal(render(format, { user: '', startedAtMs: Date.UTC(2021, 5, 3, 6, 21, 46) }),
        '127.0.0.1 -  03/Jun/2021:07:21:46 +0100 "GET /index.php?a=b" 200 /var/www/html/index.php 12.345 2048 50.00%')
      // pools.d/www.conf spells it with the legacy %{mili}d.
      assert.equal(render(format.replace('milli', 'mili'), { user: '', startedAtMs: Date.UTC(2021, 5, 3, 6, 21, 46) }).split(' ').at(-3), '12.345')
    } finally {
      process.env.TZ = 'UTC'
    }
  })

  it('the %R %p [%t] example', () => {
    assert.equal(render('%R %p [%t] "%m %r" %s %{micro}d %C %M %l', {
      remoteAddr: '172.17.0.4', uri: '/examples/some_counter.php', query: '', user: '', startedAtMs: Date.UTC(2021, 9, 27, 8, 27, 15),
      durationUs: 181_812, cpuPercent: 5.5
    }), '172.17.0.4 27 [27/Oct/2021:08:27:15 +0000] "GET /examples/some_counter.php" 200 181812 5.50 2097152 0')
  })

  it('a without-query request: %Q%q add nothing', () => {
    assert.equal(render('"%m %r%Q%q"', { query: '' }), '"GET /index.php"')
  })

  it('the request-header idiom: %{HTTP_...}e', () => {
    assert.equal(render('%{REMOTE_ADDR}e %{HTTP_HOST}e "%{HTTP_USER_AGENT}e"'), '- example.com "curl/8.5.0"')
  })
})

describe('%t / %T: glibc strftime in the C locale, local time', () => {
  const at = (format: string, ms: number): string => render(`%{${format}}t`, { startedAtMs: ms })
  const t = Date.UTC(2026, 10, 21, 10, 11, 12) // a Saturday
  const cases: Array<[string, string]> = [
    ['%a %A %b %B %h', 'Sat Saturday Nov November Nov'],
    ['%c', 'Sat Nov 21 10:11:12 2026'],
    ['%C %y %Y %G %g', '20 26 2026 2026 26'],
    ['%d %e %j %m', '21 21 325 11'],
    ['%D|%F|%x|%X|%T|%R|%r', '11/21/26|2026-11-21|11/21/26|10:11:12|10:11:12|10:11|10:11:12 AM'],
    ['%H %I %k %l %M %S %p %P', '10 10 10 10 11 12 AM am'],
    ['%u %w %U %W %V', '6 6 46 46 47'],
    ['%s', String(t / 1000)],
    ['%z %Z', '+0000 UTC'],
    ['a%nb%tc%%', 'a\nb\tc%'],
    ['%-d|%_m|%05d|%^a|%#b|%#p|%10B|%-H|%3j|%Ey|%Od', '21|11|00021|SAT|NOV|am|  November|10|325|26|21'],
    ['%q|%', '%q|%']
  ]
  for (const [format, expected] of cases) {
    it(`${format} → ${JSON.stringify(expected)}`, () => assert.equal(at(format, t), expected))
  }

  it('pads early hours and days as glibc does', () => {
    assert.equal(at('%d %e %H %k %I %l', Date.UTC(2026, 0, 5, 3, 4, 5)), '05  5 03  3 03  3')
  })

  it('ISO weeks across the year boundary (%G %V)', () => {
    assert.equal(at('%G-W%V-%u', Date.UTC(2021, 0, 3)), '2020-W53-7')
    assert.equal(at('%G-W%V-%u', Date.UTC(2024, 11, 30)), '2025-W01-1')
  })

  it('other zones: %z from the offset, %Z from ICU', () => {
    try {
      process.env.TZ = 'Europe/Berlin'
      assert.equal(at('%H:%M %z %Z', t), '11:11 +0100 CET')
      assert.equal(at('%H:%M %z %Z', Date.UTC(2026, 6, 1, 10, 11, 12)), '12:11 +0200 CEST')
      process.env.TZ = 'America/New_York'
      assert.equal(at('%H:%M %z %Z', t), '05:11 -0500 EST')
      process.env.TZ = 'Asia/Kolkata'
      // Deviation: glibc's tzdata says IST; ICU has no English abbreviation for it, so the offset is used.
      assert.equal(at('%H:%M %z %Z', t), '15:41 +0530 +0530')
    } finally {
      process.env.TZ = 'UTC'
    }
  })

  it('is rendered once per second: the same second gives the same text', () => {
    const f = compile('%t')
    assert.equal(f({ ...ENTRY, startedAtMs: t + 1 }), f({ ...ENTRY, startedAtMs: t + 999 }))
    assert.notEqual(f({ ...ENTRY, startedAtMs: t + 999 }), f({ ...ENTRY, startedAtMs: t + 1000 }))
  })
})

describe("php's parsing quirks", () => {
  it('drops a % that ends the format', () => assert.equal(render('100%'), '100'))
  it('allows empty braces on any letter: %{}f is %f, %{}t the default time', () => {
    assert.equal(render('%{}f %{}t'), '/var/www/html/index.php 21/Nov/2026:10:11:12 +0000')
  })
  it('keeps the last of repeated braces', () => assert.equal(render('%{HTTP_HOST}{HTTP_USER_AGENT}e'), 'curl/8.5.0'))
  it('cuts a braced argument at 128 characters', () => {
    const seen: string[] = []
    render(`%{${'N'.repeat(130)}}e`, { params: name => { seen.push(name); return undefined } })
    assert.deepEqual(seen.map(s => s.length), [128])
  })
  it('copies everything else, braces outside a token included', () => {
    assert.equal(render('{x} "%s" }'), '{x} "200" }')
    assert.equal(render(''), '')
    assert.equal(render('plain'), 'plain')
  })
  it('asks the entry callbacks with the names as written (php matches them case-sensitively)', () => {
    const seen: string[] = []
    render('%{content-type}o %{http_host}e', {
      responseHeaders: n => { seen.push(`o:${n}`); return undefined },
      params: n => { seen.push(`e:${n}`); return undefined }
    })
    assert.deepEqual(seen, ['o:content-type', 'e:http_host'])
  })
})

describe("bad formats: php's warnings", () => {
  const cases: Array<[string, string]> = [
    ['%x', 'Invalid token in the access.format (%x)'],
    ['%R %i', 'Invalid token in the access.format (%i)'],
    ['%{User-Agent}i', 'Invalid token in the access.format (%i)'],
    ['%{x} ', 'Invalid token in the access.format (% )'],
    ['%{a}}t', 'Invalid token in the access.format (%})'],
    ['%{seconds}s', 'embrace is not allowed for modifier %s'],
    ['%{x}f', 'embrace is not allowed for modifier %f'],
    ['%{x}%', 'embrace is not allowed for modifier %%'],
    ['%{x}P', 'embrace is not allowed for modifier %P'],
    ['%{abc', 'missing closing embrace in the access.format'],
    ['%R %{abc}', 'missing closing embrace in the access.format'],
    ['%{a}{b', 'missing closing embrace in the access.format'],
    ['%{hours}d', "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('hours')"],
    ['%{gigabytes}M', "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('gigabytes')"],
    ['%{idle}C', "only 'total', 'user' or 'system' are allowed as a modifier for %C ('idle')"],
    ['%e', 'the name of the environment variable must be set between embraces for %e'],
    ['%{}e', 'the name of the environment variable must be set between embraces for %e'],
    ['%o', 'the name of the header must be set between embraces for %o'],
    ['%{}o', 'the name of the header must be set between embraces for %o'],
    // The first bad token wins, as php stops there.
    ['%{hours}d %x', "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('hours')"]
  ]
  for (const [format, reason] of cases) {
    it(`${JSON.stringify(format)} → ${reason}`, () => assert.deepEqual(compileAccessFormat(format), { ok: false, reason }))
  }
})

describe('cost', () => {
  it('prints ns per formatted line (no assertion)', () => {
    const formats = {
      default: DEFAULT_ACCESS_FORMAT,
      'www.conf sample': '%R - %u %t "%m %r%Q%q" %s %f %{milli}d %{kilo}M %C%%',
      'with %e and %o': '%{REMOTE_ADDR}e %t "%m %{REQUEST_URI}e" %s "%{HTTP_USER_AGENT}e" %{Content-Type}o %{micro}d'
    }
    for (const [name, format] of Object.entries(formats)) {
      const f = compile(format)
      const n = 200_000
      const e: { -readonly [K in keyof AccessEntry]: AccessEntry[K] } = { ...ENTRY }
      let bytes = 0
      for (let i = 0; i < 10_000; i++) bytes += f(e).length
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        // A new duration each line, a new second every 1000 lines.
        e.durationUs = i
        e.startedAtMs = ENTRY.startedAtMs + i
        bytes += f(e).length
      }
      const ns = Number(process.hrtime.bigint() - t0) / n
      console.log(`access.format ${name}: ${ns.toFixed(0)} ns per line (${bytes} chars)`)
    }
  })
})
