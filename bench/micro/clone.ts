// What crossing a MessagePort costs for the shapes of data a request takes between the main thread
// and a worker (common/messages.ts), measured in one thread so that no wake-up is included: the
// poster's structured-clone serialization, then the receiver's deserialization (the time until the
// messages were delivered). Why the params and small response bodies cross as latin1 text, the
// TASKS batches are flat arrays and a RESULT is one flat object: a Uint8Array costs a backing store
// (malloc, a global handle, sweeping) on both sides, and each object a map transition per property.
//
//   node bench/micro/clone.ts

import { MessageChannel } from 'node:worker_threads'

const PARAMS_BYTES = 700 // ~25 nginx fastcgi_params
const paramBytes = new Uint8Array(PARAMS_BYTES).fill(65)
const paramText = Buffer.from(paramBytes).toString('latin1')
const head = 'Content-Type: text/plain;charset=UTF-8\r\n\r\n'
const bodyBytes = new TextEncoder().encode('Hello, World!')

const task = (i: number, params: Uint8Array | string): unknown =>
  ({ id: i, script: '/srv/app/index.mjs', params, body: null, bodyStreaming: false, isHead: false })
const flatTasks = (params: () => Uint8Array | string): unknown =>
  ({ t: 13, ids: [0, 1, 2, 3], scripts: Array(4).fill('/srv/app/index.mjs'), params: [params(), params(), params(), params()], bodies: null, flags: [0, 0, 0, 0] })
const result = (body: () => Uint8Array | string): unknown => ({ response: { head, body: body() }, error: null })
const flatResult = (body: () => Uint8Array | string): unknown =>
  ({ t: 7, id: 0, head, body: body(), error: null, usage: null, failure: null })
const bytesParams = (): Uint8Array => paramBytes.slice()
const textParams = (): string => paramText
const bytesBody = (): Uint8Array => bodyBytes.slice()
const textBody = (): string => 'Hello, World!'

/** Each shape: tasks go in batches of 4 items a message, results one a message (as pool.ts and worker/entry.ts send them). */
const shapes: Record<string, { items: number, make: () => unknown }> = {
  'tasks, params as bytes': { items: 4, make: () => ({ t: 13, tasks: [0, 1, 2, 3].map((i) => task(i, bytesParams())) }) },
  'tasks, params as text': { items: 4, make: () => ({ t: 13, tasks: [0, 1, 2, 3].map((i) => task(i, textParams())) }) },
  'tasks, text, flat': { items: 4, make: () => flatTasks(textParams) },
  'result, body as bytes': { items: 1, make: () => ({ t: 7, id: 0, result: result(bytesBody), failure: null }) },
  'result, body as text': { items: 1, make: () => ({ t: 7, id: 0, result: result(textBody), failure: null }) },
  'result, text, flat': { items: 1, make: () => flatResult(textBody) }
}

const { port1, port2 } = new MessageChannel()
let received = 0
port2.on('message', () => { received++ })

async function delivered (n: number): Promise<void> {
  while (received < n) await new Promise((resolve) => setImmediate(resolve))
  received = 0
}

const MESSAGES = 20_000
console.log('per item                       post (µs)   receive (µs)')
for (const [name, { items, make }] of Object.entries(shapes)) {
  let t0 = performance.now()
  for (let m = 0; m < MESSAGES; m++) port1.postMessage(make())
  const postUs = (performance.now() - t0) * 1000 / MESSAGES / items
  t0 = performance.now()
  await delivered(MESSAGES)
  const receiveUs = (performance.now() - t0) * 1000 / MESSAGES / items
  console.log(`${name.padEnd(30)} ${postUs.toFixed(2).padStart(9)} ${receiveUs.toFixed(2).padStart(14)}`)
}
port1.close()
