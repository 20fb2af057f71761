// The status report (status/report.ts): which pool figure feeds which php field, the units (epoch
// seconds, microseconds), php's `-` and 0 for unknown values, the request URI from SCRIPT_NAME plus
// the query, the Basic auth user, php's field length caps, and last request memory only when Idle.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeParams, paramsText } from '../../../src/fastcgi/index.ts'
import type { PoolStatsSnapshot } from '../../../src/pool/pool-stats.ts'
import type { ThreadSnapshot } from '../../../src/pool/thread-snapshot.ts'
import { basicAuthUser, buildReport } from '../../../src/status/report.ts'

const NOW_MS = 1_700_000_100_900

function stats (over: Partial<PoolStatsSnapshot> = {}): PoolStatsSnapshot {
  return {
    startedAtMs: 1_700_000_000_500,
    accepted: 42,
    completed: 40,
    maxQueued: 7,
    refusedQueueFull: 0,
    refusedQueueTimeout: 0,
    refusedClosed: 0,
    maxChildrenReached: 3,
    slowRequests: 2,
    takenBack: 0,
    maxActive: 4,
    threadsStarted: 4,
    threadsRecycled: 0,
    threadsOverHeapLimit: 0,
    threadsRetired: 0,
    threadsDied: 0,
    threadsOutOfMemory: 0,
    emergencyRestarts: 0,
    requestsTimedOut: 0,
    unhandledRejections: 0,
    uncaughtExceptions: 0,
    threadsTerminated: 0,
    threadsStuck: 0,
    threads: 4,
    idle: 1,
    active: 3,
    starting: 0,
    leaving: 0,
    stuck: 0,
    queued: 5,
    queueMax: 128,
    ...over
  }
}

/** The PARAMS text a thread gets (fastcgi/params.ts paramsText). */
function params (pairs: Record<string, string>): string {
  return paramsText(encodeParams(Object.entries(pairs)))
}

describe('status report', () => {
  test('pool fields: php\'s names for the pool\'s counters and gauges', () => {
    const r = buildReport({ name: 'www', mode: 'ondemand' }, stats(), null, NOW_MS)
    assert.deepEqual(r, {
      pool: 'www',
      processManager: 'ondemand',
      startTime: 1_700_000_000,
      startSince: 100, // whole seconds, as php subtracts two time_t
      acceptedConn: 42,
      listenQueue: 5,
      maxListenQueue: 7,
      listenQueueLen: 128,
      idleProcesses: 1,
      activeProcesses: 3,
      totalProcesses: 4,
      maxActiveProcesses: 4,
      maxChildrenReached: 3,
      slowRequests: 2,
      processes: null
    })
  })

  test('a pool name longer than php\'s 31 characters is cut', () => {
    assert.equal(buildReport({ name: 'p'.repeat(40), mode: 'static' }, stats(), null, NOW_MS).pool, 'p'.repeat(31))
  })

  test('processes: running, finishing, idle after a request, idle before any', () => {
    const threads: ThreadSnapshot[] = [
      {
        id: 3,
        state: 'Running',
        startedAtMs: 1_700_000_050_000,
        requests: 9,
        heapUsedBytes: 5_000_000,
        request: {
          params: params({
            REQUEST_METHOD: 'POST',
            SCRIPT_NAME: '/api/upload.mjs',
            REQUEST_URI: '/upload?x=1',
            QUERY_STRING: 'x=1&y=%C3%A9',
            CONTENT_LENGTH: '1234',
            HTTP_AUTHORIZATION: 'Basic ' + Buffer.from('alice:s3cr:et').toString('base64')
          }),
          script: '/srv/api/upload.mjs',
          method: 'POST',
          uri: '/upload?x=1',
          durationMs: 12.3456,
          cpuUs: -1,
          memoryBytes: -1
        }
      },
      {
        id: 4,
        state: 'Finishing',
        startedAtMs: 1_700_000_050_000,
        requests: 1,
        heapUsedBytes: 0,
        // decoded flat params, a method longer than php's 15 characters, and no SCRIPT_NAME: REQUEST_URI's path
        request: { params: ['REQUEST_URI', '/front?q=1', 'QUERY_STRING', 'q=1'], script: '/srv/front.mjs', method: 'PROPFINDPROPFINDX', uri: '/front?q=1', durationMs: 1, cpuUs: -1, memoryBytes: -1 }
      },
      {
        id: 5,
        state: 'Idle',
        startedAtMs: 1_700_000_099_999,
        requests: 2,
        heapUsedBytes: 3_145_728,
        // measured (the pool has a status page): 0.125 ms of CPU over 0.5 ms
        request: { params: params({ SCRIPT_NAME: '/' + 'a'.repeat(200), HTTP_AUTHORIZATION: 'Bearer xyz' }), script: '/srv/a.mjs', method: 'GET', uri: '/', durationMs: 0.5, cpuUs: 125, memoryBytes: 4_200_000 }
      },
      { id: 6, state: 'Idle', startedAtMs: 1_700_000_100_000, requests: 0, heapUsedBytes: 0, request: null },
      {
        id: 7,
        state: 'Idle',
        startedAtMs: 1_700_000_100_000,
        requests: 1,
        heapUsedBytes: 3_145_728,
        // not measured: the heap pm.heap_soft_limit measured, no CPU figure
        request: { params: params({ SCRIPT_NAME: '/b.mjs' }), script: '/srv/b.mjs', method: 'GET', uri: '/b.mjs', durationMs: 2, cpuUs: -1, memoryBytes: -1 }
      }
    ]
    const r = buildReport({ name: 'www', mode: 'static' }, stats(), threads, NOW_MS)
    assert.deepEqual(r.processes, [
      {
        pid: 3,
        state: 'Running',
        startTime: 1_700_000_050,
        startSince: 50,
        requests: 9,
        requestDuration: 12345,
        requestMethod: 'POST',
        requestUri: '/api/upload.mjs?x=1&y=%C3%A9',
        contentLength: 1234,
        user: 'alice',
        script: '/srv/api/upload.mjs',
        lastRequestCpu: 0,
        lastRequestMemory: 0 // php: 0 unless Idle
      },
      {
        pid: 4,
        state: 'Finishing',
        startTime: 1_700_000_050,
        startSince: 50,
        requests: 1,
        requestDuration: 1000,
        requestMethod: 'PROPFINDPROPFIN', // php's 15 characters
        requestUri: '/front?q=1',
        contentLength: 0,
        user: '-',
        script: '/srv/front.mjs',
        lastRequestCpu: 0,
        lastRequestMemory: 0
      },
      {
        pid: 5,
        state: 'Idle',
        startTime: 1_700_000_099,
        startSince: 1,
        requests: 2,
        requestDuration: 500,
        requestMethod: 'GET',
        requestUri: '/' + 'a'.repeat(126), // php's 127-character request URI
        contentLength: 0,
        user: '-',
        script: '/srv/a.mjs',
        lastRequestCpu: 25,
        lastRequestMemory: 4_200_000
      },
      {
        pid: 6,
        state: 'Idle',
        startTime: 1_700_000_100,
        startSince: 0,
        requests: 0,
        requestDuration: 0,
        requestMethod: '-',
        requestUri: '-',
        contentLength: 0,
        user: '-',
        script: '-',
        lastRequestCpu: 0,
        lastRequestMemory: 0
      },
      {
        pid: 7,
        state: 'Idle',
        startTime: 1_700_000_100,
        startSince: 0,
        requests: 1,
        requestDuration: 2000,
        requestMethod: 'GET',
        requestUri: '/b.mjs',
        contentLength: 0,
        user: '-',
        script: '/srv/b.mjs',
        lastRequestCpu: 0,
        lastRequestMemory: 3_145_728
      }
    ])
  })

  test('Basic auth user as php\'s PHP_AUTH_USER', () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64')
    assert.equal(basicAuthUser('Basic ' + b64('bob:pw')), 'bob')
    assert.equal(basicAuthUser('basic  ' + b64('bob:')), 'bob')
    assert.equal(basicAuthUser('Basic ' + b64('zoë:pw')), 'zoë')
    assert.equal(basicAuthUser('Basic ' + b64('nocolon')), '')
    assert.equal(basicAuthUser('Digest username="bob"'), '')
    assert.equal(basicAuthUser(''), '')
  })
})
