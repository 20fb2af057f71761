// bench/wrk.ts parses wrk 4.1's text report: the figures of bench/nginx.ts come from here.
// The reports below are wrk's own output, copied from real runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseWrkOutput } from '../../../bench/wrk.ts'

const KEEPALIVE_PHP = `Running 5s test @ http://127.0.0.1:35271/hello.php
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   288.34ms  434.88ms   1.80s    82.28%
    Req/Sec     6.09k     5.11k   16.92k    60.92%
  Latency Distribution
     50%  194.00us
     75%  517.62ms
     90%  982.59ms
     99%    1.60s 
  53579 requests in 5.03s, 9.86MB read
Requests/sec:  10649.96
Transfer/sec:      1.96MB
`

const NOT_FOUND = `Running 1s test @ http://127.0.0.1:18777/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.85ms   28.99ms 172.06ms   90.91%
    Req/Sec    15.50k    12.46k   34.68k    60.00%
  Latency Distribution
     50%   55.00us
     75%    3.09ms
     90%   34.54ms
     99%  148.52ms
  15906 requests in 1.13s, 1.97MB read
  Socket errors: connect 0, read 3, write 1, timeout 14
  Non-2xx or 3xx responses: 15906
Requests/sec:  14017.69
Transfer/sec:      1.74MB
`

test('parseWrkOutput: requests, req/s, latency percentiles in ms whatever the unit', () => {
  const r = parseWrkOutput(KEEPALIVE_PHP)
  assert.equal(r.requests, 53579)
  assert.equal(r.seconds, 5.03)
  assert.equal(r.rps, 10649.96)
  assert.ok(Math.abs(r.latency.p50 - 0.194) < 1e-9)
  assert.equal(r.latency.p75, 517.62)
  assert.equal(r.latency.p99, 1600)
  assert.equal(r.latency.avg, 288.34)
  assert.equal(r.latency.max, 1800)
  assert.equal(r.bytesRead, Math.round(9.86 * 1024 * 1024))
  assert.deepEqual(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0, total: 0 })
})

test('parseWrkOutput: socket errors and non-2xx responses are errors', () => {
  const r = parseWrkOutput(NOT_FOUND)
  assert.deepEqual(r.errors, { connect: 0, read: 3, write: 1, timeout: 14, status: 15906, total: 15924 })
  assert.ok(Math.abs(r.latency.p50 - 0.055) < 1e-9)
  assert.equal(r.latency.p99, 148.52)
})

test('parseWrkOutput: a report without the --latency lines or the totals is refused', () => {
  assert.throws(() => parseWrkOutput(KEEPALIVE_PHP.replace(/^\s+99%.*\n/m, '')), /99% latency line/)
  assert.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n'), /Requests\/sec/)
})
