// What a postMessage to a worker thread costs the poster, with the thread awake (a burst: it is
// busy with the previous messages) and asleep (paced: it went back to its event loop in between).
// The difference is the wake-up of a sleeping thread, which the pool's batching (one TASKS message
// per thread and turn, src/pool/pool.ts) pays once per batch instead of once per request. (A short
// spin of an idle worker before it sleeps was tried against it: no gain in `npm run bench`.)
//
//   node bench/micro/wake.ts

import { MessageChannel, Worker } from 'node:worker_threads'
import { tasksMessage, type WorkerTask } from '../../src/common/messages.ts'

const worker = new Worker(`
  const { parentPort } = require('node:worker_threads')
  parentPort.once('message', ({ port }) => { port.on('message', () => {}) })
`, { eval: true })
const { port1, port2 } = new MessageChannel()
worker.postMessage({ port: port2 }, [port2])
await new Promise((resolve) => setTimeout(resolve, 200))

const params = 'A'.repeat(700) // the PARAMS text of a typical nginx request
const task = (id: number): WorkerTask => ({ id, script: '/srv/app/index.mjs', params, body: null, bodyStreaming: false, isHead: false, claim: -1 })
const cases: Record<string, () => void> = {
  'one task': () => { port1.postMessage(tasksMessage([task(1)])) },
  'four tasks': () => { port1.postMessage(tasksMessage([task(1), task(2), task(3), task(4)])) },
  'a number': () => { port1.postMessage(1) }
}

console.log('message        thread awake (µs)   thread asleep (µs)')
for (const [name, post] of Object.entries(cases)) {
  const row: string[] = []
  for (const paced of [false, true]) {
    const n = paced ? 2000 : 20_000
    let ns = 0n
    for (let i = 0; i < n; i++) {
      const start = process.hrtime.bigint()
      post()
      ns += process.hrtime.bigint() - start
      if (paced) await new Promise((resolve) => setTimeout(resolve, 0))
    }
    row.push((Number(ns) / n / 1000).toFixed(2))
  }
  console.log(`${name.padEnd(14)} ${row[0]!.padStart(18)} ${row[1]!.padStart(20)}`)
}
await worker.terminate()
