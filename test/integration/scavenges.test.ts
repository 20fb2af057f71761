// When its pools can fill the CPUs, the server's threads collect their young generation alone
// (src/master/v8-flags.ts): V8's parallel scavenge waits for helper threads that the pool's other
// threads keep off the CPUs. V8's --trace-gc-nvp says, for each scavenge, how long helper threads
// worked on it (`background.scavenge.parallel=`): 0.00 for every one of such a server's, and above
// zero for some of a server with fewer threads than CPUs, or started with `node
// --parallel-scavenge` (the user's choice, kept). Real processes under the supervisor (the
// default command; the server process inherits the node flags), a real handler that allocates
// (test/fixtures/apps/churn.mjs). pm = ondemand: one request at a time, so one thread starts.

import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { buildCgiParams, fcgiRequest } from '../../src/client/fcgi-client.ts'
import { threadScavengeField } from '../../bench/scavenge-trace.ts'
import { APPS, startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'

const CPUS = availableParallelism()

function config (maxChildren: number): string {
  return `[global]
log_level = notice

[www]
listen = 127.0.0.1:{{PORT}}
pm = ondemand
pm.max_children = ${maxChildren}
root = {{ROOT}}
`
}

const APP = join(APPS, 'churn.mjs')
const REQUESTS = 12

const servers: FpmHandle[] = []

after(async () => {
  for (const fpm of servers) assert.equal(await fpm.stop(), 0)
})

/** Helper threads' time in each scavenge of the pool's threads, after REQUESTS requests. */
async function helperTimesMs (maxChildren: number, nodeFlags: string[] = []): Promise<number[]> {
  const fpm = await startFpm(config(maxChildren), { nodeFlags: ['--trace-gc-nvp', ...nodeFlags] })
  servers.push(fpm)
  const params = buildCgiParams({ uri: '/churn.mjs', scriptFilename: APP })
  for (let i = 0; i < REQUESTS; i++) {
    const res = await fcgiRequest(`127.0.0.1:${fpm.port}`, { params }, { timeoutMs: 20_000 })
    assert.equal(res.status, 200, res.body.toString())
    assert.equal(res.body.toString(), '300000')
  }
  // The pool's threads' only: the main threads (the supervisor's, and the server's before it set
  // the flag) are left out; the pool's threads start after.
  const lines = fpm.rawStdout().split('\n').filter((line) => threadScavengeField(line, 'pause') !== null)
  return lines.map((line) => {
    const ms = threadScavengeField(line, 'background.scavenge.parallel')
    assert.ok(ms !== null, `a scavenge line without helper time: ${line.slice(0, 200)}`)
    return ms
  })
}

describe('young-generation collections', () => {
  it(`pm.max_children as many as the CPUs (${CPUS}): no helper thread works on any scavenge`, async () => {
    const times = await helperTimesMs(CPUS)
    assert.ok(times.length >= REQUESTS, `${times.length} scavenges traced`)
    assert.deepEqual(times.filter((ms) => ms > 0), [])
  })

  it('fewer threads than CPUs: V8\'s default, helper threads work on scavenges', { skip: CPUS < 2 ? 'one CPU' : false }, async () => {
    const times = await helperTimesMs(CPUS - 1)
    assert.ok(times.length >= REQUESTS, `${times.length} scavenges traced`)
    assert.ok(times.some((ms) => ms > 0), `helper time in ${times.length} scavenges: ${times.join(' ')}`)
  })

  it('node --parallel-scavenge: the user\'s choice, helper threads work on scavenges', async () => {
    const times = await helperTimesMs(CPUS, ['--parallel-scavenge'])
    assert.ok(times.length >= REQUESTS, `${times.length} scavenges traced`)
    assert.ok(times.some((ms) => ms > 0), `helper time in ${times.length} scavenges: ${times.join(' ')}`)
  })
})
