// request_terminate_timeout's pieces that need no thread: how often it is checked, and the 504
// the server answers with. The behaviour itself: test/integration/terminate-*.test.ts.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { timeoutCheckEveryMs } from '../../../src/pool/pool.ts'
import { ServerResponse, serverResponse } from '../../../src/server/responder.ts'

describe('timeoutCheckEveryMs', () => {
  it('is a twentieth of the timeout, between 10 ms and php\'s 1 s heartbeat', () => {
    assert.deepEqual([100, 250, 1000, 5000, 20_000, 30_000, 3_600_000].map(timeoutCheckEveryMs), [10, 12, 50, 250, 1000, 1000, 1000])
  })
})

describe("the server's 504", () => {
  it('is the timeout kind of the ServerResponse table', () => {
    assert.equal(ServerResponse.timeout.status, 504)
    const r = serverResponse('timeout', false)
    assert.equal(r.head, 'Status: 504 Gateway Timeout\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n')
    assert.equal(Buffer.from(r.body ?? []).toString(), 'Gateway Timeout\n')
    assert.equal(serverResponse('timeout', true).body, null)
  })
})
