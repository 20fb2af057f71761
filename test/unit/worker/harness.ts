// Plays the main thread's role for the worker tests: a real Piscina pool running
// src/worker/entry.ts (atomics 'async'), the HELLO ports, tasks sent in TASKS messages and their
// RESULTs, and per-request message queues.

import { Piscina } from 'piscina'
import { fileURLToPath } from 'node:url'
import type { MessagePort } from 'node:worker_threads'
import { Msg, resultOf, tasksMessage } from '../../../src/common/messages.ts'
import type { AbortMessage, AckMessage, BodyMessage, HelloMessage, LogMessage, MainMessage, WorkerData, WorkerMessage, WorkerResult, WorkerTask } from '../../../src/common/messages.ts'

export const ENTRY = fileURLToPath(new URL('../../../src/worker/entry.ts', import.meta.url))
export const APPS = fileURLToPath(new URL('../../fixtures/apps/', import.meta.url))

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Flat CGI params with sensible defaults; `extra` wins. */
export function cgi (extra: Record<string, string> = {}): string[] {
  const all: Record<string, string> = {
    REQUEST_METHOD: 'GET',
    REQUEST_URI: '/',
    SERVER_NAME: 'example.test',
    SERVER_PORT: '80',
    HTTP_HOST: 'example.test',
    ...extra
  }
  const flat: string[] = []
  for (const [name, value] of Object.entries(all)) flat.push(name, value)
  return flat
}

/** What the channel said about one request, in order, with a way to wait for more. */
export class RequestLog {
  readonly messages: WorkerMessage[] = []
  port: MessagePort | null = null
  /** ACK every response body as soon as it arrives (a main thread whose socket never blocks). */
  autoAck = false
  #waiter: (() => void) | null = null

  push (msg: WorkerMessage, port: MessagePort): void {
    this.port ??= port
    this.messages.push(msg)
    if (this.autoAck && (msg.t === Msg.HEAD || msg.t === Msg.CHUNK) && msg.body !== null) {
      port.postMessage({ t: Msg.ACK, id: msg.id, bytes: msg.body.byteLength })
    }
    const waiter = this.#waiter
    this.#waiter = null
    waiter?.()
  }

  /** Waits until `predicate` holds over the messages (or fails after timeoutMs). */
  async until (predicate: (messages: WorkerMessage[]) => boolean, timeoutMs = 3000): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (!predicate(this.messages)) {
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`timed out; messages so far: ${JSON.stringify(this.summary())}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiter = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  get ended (): boolean {
    return this.messages.some((m) => (m.t === Msg.HEAD || m.t === Msg.CHUNK) && m.end)
  }

  /** Response body bytes received so far. */
  get bodyBytes (): number {
    let n = 0
    for (const m of this.messages) if (m.t === Msg.HEAD || m.t === Msg.CHUNK) n += m.body?.byteLength ?? 0
    return n
  }

  get head (): string | null {
    for (const m of this.messages) if (m.t === Msg.HEAD) return m.head
    return null
  }

  get body (): Buffer {
    const parts: Uint8Array[] = []
    for (const m of this.messages) if ((m.t === Msg.HEAD || m.t === Msg.CHUNK) && m.body !== null) parts.push(m.body)
    return Buffer.concat(parts)
  }

  get logs (): LogMessage[] {
    return this.messages.filter((m): m is LogMessage => m.t === Msg.LOG)
  }

  summary (): unknown[] {
    return this.messages.map((m) => m.t === Msg.HEAD || m.t === Msg.CHUNK ? { ...m, body: m.body?.byteLength ?? null } : m)
  }
}

export interface RunOptions {
  params?: string[]
  body?: Uint8Array | null
  bodyStreaming?: boolean
  isHead?: boolean
  id?: number
  autoAck?: boolean
}

export interface Running {
  readonly id: number
  readonly log: RequestLog
  readonly result: Promise<WorkerResult>
  /** Set once `result` has settled. */
  settled: boolean
}

export class Harness {
  readonly pool: Piscina
  readonly ports: MessagePort[] = []
  readonly hellos: HelloMessage[] = []
  readonly logs = new Map<number, RequestLog>()
  readonly #results = new Map<number, { resolve: (r: WorkerResult) => void, reject: (e: Error) => void }>()
  #nextId = 1

  private constructor (pool: Piscina) {
    this.pool = pool
  }

  static async start (options: { threads?: number, concurrentTasksPerWorker?: number, env?: Record<string, string> } = {}): Promise<Harness> {
    const threads = options.threads ?? 1
    const workerData: WorkerData = { poolName: 'test', env: options.env ?? {}, phpValues: {}, phpAdminValues: {}, threadConcurrency: options.concurrentTasksPerWorker ?? 8, measureHeap: true }
    const pool = new Piscina({
      filename: ENTRY,
      atomics: 'async',
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: options.concurrentTasksPerWorker ?? 8,
      idleTimeout: 60_000,
      workerData
    })
    const harness = new Harness(pool)
    await new Promise<void>((resolve) => {
      pool.on('message', (msg: HelloMessage) => {
        if (msg?.t !== Msg.HELLO) return
        harness.hellos.push(msg)
        harness.ports.push(msg.port)
        msg.port.on('message', (m: WorkerMessage) => harness.#route(m, msg.port))
        if (harness.ports.length === threads) resolve()
      })
    })
    return harness
  }

  #route (msg: WorkerMessage, port: MessagePort): void {
    if (msg.t === Msg.RESULT) {
      const waiting = this.#results.get(msg.id)
      if (waiting === undefined) return
      this.#results.delete(msg.id)
      if (msg.failure !== null) waiting.reject(Object.assign(new Error(msg.failure.message), msg.failure))
      else waiting.resolve(resultOf(msg))
      return
    }
    this.#logFor(msg.id).push(msg, port)
  }

  #logFor (id: number): RequestLog {
    let log = this.logs.get(id)
    if (log === undefined) {
      log = new RequestLog()
      this.logs.set(id, log)
    }
    return log
  }

  nextId (): number {
    return this.#nextId++
  }

  run (app: string, options: RunOptions = {}): Running {
    const id = options.id ?? this.nextId()
    const task: WorkerTask = {
      id,
      script: APPS + app,
      params: options.params ?? cgi(),
      body: options.body ?? null,
      bodyStreaming: options.bodyStreaming ?? false,
      isHead: options.isHead ?? false,
      claim: -1
    }
    const log = this.#logFor(id)
    log.autoAck = options.autoAck ?? false
    // Round robin over the threads, as the pool spreads requests; the log knows the port from now on.
    const port = this.ports[id % this.ports.length]
    if (port === undefined) throw new Error('no worker port')
    log.port = port
    const result = new Promise<WorkerResult>((resolve, reject) => { this.#results.set(id, { resolve, reject }) })
    port.postMessage(tasksMessage([task]) satisfies MainMessage)
    const running: Running = { id, log, result, settled: false }
    running.result.then(() => { running.settled = true }, () => { running.settled = true })
    return running
  }

  /** Sends to the thread that runs `id` (the only one, or the one that talked about it). */
  send (msg: BodyMessage | AckMessage | AbortMessage): void {
    const port = this.logs.get(msg.id)?.port ?? this.ports[0]
    if (port === undefined) throw new Error('no worker port')
    port.postMessage(msg)
  }

  async close (): Promise<void> {
    for (const port of this.ports) port.close()
    await this.pool.destroy()
  }
}
