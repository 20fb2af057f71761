// The JavaScript call stack of a worker thread, taken from the main thread through the in-process
// inspector (node-runtime.md §1; ported from feasibility/worker-backtrace.mjs). No flags needed.
//
// One inspector session per process, shared by every pool that has a slowlog (acquire/release,
// refcounted): `NodeWorker.enable` once, then every thread of the process attaches on its own
// (`NodeWorker.attachedToWorker`) and detaches when it ends. That costs nothing measurable; the
// Debugger domain of a thread is enabled only for the few milliseconds of a capture (keeping it on
// costs 2-8% of throughput and floods the main thread with `scriptParsed` messages).
//
// A capture, sent to the thread's session through `NodeWorker.sendMessageToWorker`:
// Debugger.enable, Debugger.pause, the `Debugger.paused` event (its callFrames), Debugger.resume,
// the `Debugger.resumed` event, Debugger.disable. The thread stays paused for about a millisecond.
//
// The traps of the prototype, handled here:
// 1. `workerInfo.workerId` is an attach counter, not the threadId: the threadId is parsed from the
//    title, `[worker <threadId>] <name>`.
// 2. A pause that reaches the thread before it has left the previous pause loop is silently
//    ignored: a capture waits for the `Debugger.resumed` *event*, and captures of one thread never
//    overlap.
// 3. `callFrames[].url` is empty: URLs come from the `Debugger.scriptParsed` events that
//    Debugger.enable replays.
// 4. Inspector replies do not keep the event loop alive: every step has a (ref'd) timeout, and a
//    pause that never came is dropped with Debugger.disable. A `Debugger.paused` that arrives
//    when nobody waits for it any more is resumed at once: a thread is never left paused.
// 5. `Runtime.evaluate` of async code never completes on a parked thread: only synchronous
//    expressions are evaluated.
//
// What a capture gives, per situation (node-runtime.md §1): a busy thread (a loop, Atomics.wait)
// pauses within milliseconds: `stack`. A thread whose event loop is idle (its requests await I/O or
// a timer) runs no JavaScript, so the pause does not come: `idle`, and Runtime.evaluate can still
// tell what it waits for. A thread blocked in a system call (a synchronous read of a FIFO,
// execSync) answers nothing until the call returns: `failed`.

import type { Debugger, NodeWorker, Session } from 'node:inspector'

export interface StackFrame {
  /** '' for an anonymous function. */
  readonly functionName: string
  /** The script's URL (file:///..., node:internal/...); '' when unknown (eval). */
  readonly url: string
  /** Where the frame is executing, 1-based. */
  readonly line: number
  readonly column: number
  /** Where the function is defined (1-based; 0: unknown): identifies the function. */
  readonly functionLine: number
  readonly functionColumn: number
}

export type Backtrace =
  /** The thread was running JavaScript: its frames, innermost first. */
  | { readonly kind: 'stack', readonly frames: readonly StackFrame[], readonly ms: number }
  /** The thread ran no JavaScript: the pause did not come within the wait (its event loop is idle). */
  | { readonly kind: 'idle', readonly ms: number }
  /** No answer, the thread exited, or the inspector is not available. */
  | { readonly kind: 'failed', readonly reason: string, readonly ms: number }

/**
 * How long a capture waits for `Debugger.paused` once the pause is acknowledged. A thread running
 * JavaScript pauses at its next stack check, within a millisecond of the acknowledgement (both
 * happen in the same interrupt); only an idle event loop makes it wait. Generous for a loaded
 * machine, short enough not to keep the pause pending long: a pause still pending when the idle
 * thread wakes up stops at the first internal statement it runs (processTimers), which says
 * nothing about the request.
 */
const PAUSE_WAIT_MS = 250
/** How long the steps that only tidy up (disable, resume of a pause nobody waits for) may take. */
const TIDY_WAIT_MS = 200

interface Pending {
  readonly resolve: (result: unknown) => void
  readonly reject: (err: Error) => void
}

/** One attached thread. */
interface Target {
  readonly threadId: number
  readonly sessionId: string
  /** scriptId -> URL, from Debugger.scriptParsed. */
  readonly scripts: Map<string, string>
  /** Commands sent and not answered, by message id. */
  readonly pending: Map<number, Pending>
  onPaused: ((params: Debugger.PausedEventDataType) => void) | null
  onResumed: (() => void) | null
  /** The last capture of this thread: the next one starts after it (trap 2). */
  last: Promise<unknown>
  detached: boolean
}

type Inspector = typeof import('node:inspector')

export class WorkerBacktracer {
  static #shared: WorkerBacktracer | null = null
  static #users = 0

  /** The process's backtracer, connected on first use; release() it when done. */
  static acquire (): WorkerBacktracer {
    WorkerBacktracer.#users++
    WorkerBacktracer.#shared ??= new WorkerBacktracer()
    return WorkerBacktracer.#shared
  }

  #session: Session | null = null
  /** Why the session could not be opened (a Node without inspector, --permission without --allow-inspector). */
  #unavailable: string | null = null
  readonly #ready: Promise<void>
  readonly #byThread = new Map<number, Target>()
  readonly #bySession = new Map<string, Target>()
  readonly #attachWaiters = new Map<number, Set<(t: Target) => void>>()
  #nextId = 1
  #released = false

  private constructor () {
    this.#ready = this.#connect()
  }

  /** Resolves with null once the session is up, or with why it cannot be. */
  async unavailable (): Promise<string | null> {
    await this.#ready
    return this.#unavailable
  }

  /** The pool no longer needs it; the last user disconnects the session. */
  release (): void {
    if (this.#released || WorkerBacktracer.#shared !== this) return
    if (--WorkerBacktracer.#users > 0) return
    this.#released = true
    WorkerBacktracer.#shared = null
    this.#ready.then(() => {
      // Disconnecting detaches every thread: their pending commands fail now, not at their timeout.
      for (const t of this.#byThread.values()) this.#detach(t)
      this.#session?.disconnect()
      this.#session = null
    }, () => {})
  }

  async #connect (): Promise<void> {
    let inspector: Inspector
    try {
      // Loaded only when a pool has a slowlog: a Node built without the inspector lacks it.
      inspector = await import('node:inspector')
      const session = new inspector.Session()
      // Throws under --permission without --allow-inspector.
      session.connect()
      this.#session = session
    } catch (err) {
      this.#unavailable = `the inspector is not available: ${(err as Error).message}`
      return
    }
    const session = this.#session
    session.on('NodeWorker.attachedToWorker', ({ params }) => { this.#onAttached(params) })
    session.on('NodeWorker.detachedFromWorker', ({ params }) => {
      const t = this.#bySession.get(params.sessionId)
      if (t !== undefined) this.#detach(t)
    })
    session.on('NodeWorker.receivedMessageFromWorker', ({ params }) => { this.#onMessage(params) })
    try {
      await new Promise<void>((resolve, reject) => {
        session.post('NodeWorker.enable', { waitForDebuggerOnStart: false }, (err) => { if (err === null) resolve(); else reject(err) })
      })
    } catch (err) {
      this.#unavailable = `NodeWorker.enable failed: ${(err as Error).message}`
    }
  }

  #onAttached (params: NodeWorker.AttachedToWorkerEventDataType): void {
    // Trap 1: the threadId is only in the title.
    const m = /^\[worker (\d+)\]/.exec(params.workerInfo.title)
    if (m === null) return
    const threadId = Number(m[1])
    const target: Target = {
      threadId,
      sessionId: params.sessionId,
      scripts: new Map(),
      pending: new Map(),
      onPaused: null,
      onResumed: null,
      last: Promise.resolve(),
      detached: false
    }
    const before = this.#byThread.get(threadId)
    if (before !== undefined) this.#detach(before)
    this.#byThread.set(threadId, target)
    this.#bySession.set(params.sessionId, target)
    const waiters = this.#attachWaiters.get(threadId)
    if (waiters === undefined) return
    this.#attachWaiters.delete(threadId)
    for (const w of waiters) w(target)
  }

  #detach (t: Target): void {
    if (t.detached) return
    t.detached = true
    if (this.#byThread.get(t.threadId) === t) this.#byThread.delete(t.threadId)
    this.#bySession.delete(t.sessionId)
    const gone = new Error(`thread ${t.threadId} detached (it exited)`)
    for (const p of t.pending.values()) p.reject(gone)
    t.pending.clear()
  }

  #onMessage (params: NodeWorker.ReceivedMessageFromWorkerEventDataType): void {
    const t = this.#bySession.get(params.sessionId)
    if (t === undefined) return
    let msg: { id?: number, method?: string, params?: unknown, result?: unknown, error?: { message: string } }
    try {
      msg = JSON.parse(params.message)
    } catch {
      return
    }
    if (msg.id !== undefined) {
      const p = t.pending.get(msg.id)
      if (p === undefined) return
      t.pending.delete(msg.id)
      if (msg.error !== undefined) p.reject(new Error(msg.error.message))
      else p.resolve(msg.result)
      return
    }
    switch (msg.method) {
      case 'Debugger.scriptParsed': {
        const script = msg.params as Debugger.ScriptParsedEventDataType
        t.scripts.set(script.scriptId, script.url)
        break
      }
      case 'Debugger.paused': {
        const waiter = t.onPaused
        t.onPaused = null
        // Trap 4: a pause nobody waits for any more (it came after the wait) is resumed at once.
        if (waiter === null) this.#send(t, 'Debugger.resume').catch(() => {})
        else waiter(msg.params as Debugger.PausedEventDataType)
        break
      }
      case 'Debugger.resumed': {
        const waiter = t.onResumed
        t.onResumed = null
        waiter?.()
        break
      }
    }
  }

  #send (t: Target, method: string, params: object = {}): Promise<unknown> {
    const session = this.#session
    if (t.detached || session === null) return Promise.reject(new Error(`thread ${t.threadId} is not attached`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      t.pending.set(id, { resolve, reject })
      session.post('NodeWorker.sendMessageToWorker', { sessionId: t.sessionId, message: JSON.stringify({ id, method, params }) }, (err) => {
        if (err === null) return
        t.pending.delete(id)
        reject(err)
      })
    })
  }

  /** The thread's session, once it has attached (a thread attaches right after it starts). */
  async #target (threadId: number, timeoutMs: number): Promise<Target> {
    const known = this.#byThread.get(threadId)
    if (known !== undefined) return known
    let waiter: ((t: Target) => void) | null = null
    const attached = new Promise<Target>((resolve) => {
      waiter = resolve
      let set = this.#attachWaiters.get(threadId)
      if (set === undefined) this.#attachWaiters.set(threadId, (set = new Set()))
      set.add(resolve)
    })
    try {
      return await withTimeout(attached, timeoutMs, `thread ${threadId} is not attached to the inspector`)
    } finally {
      const set = this.#attachWaiters.get(threadId)
      if (set !== undefined && waiter !== null) {
        set.delete(waiter)
        if (set.size === 0) this.#attachWaiters.delete(threadId)
      }
    }
  }

  /**
   * The stack of thread `threadId` now. Never throws. `timeoutMs` bounds each step that needs an
   * answer from the thread (a thread blocked in a system call gives none).
   */
  async capture (threadId: number, timeoutMs: number): Promise<Backtrace> {
    const t0 = performance.now()
    const failed = (reason: string): Backtrace => ({ kind: 'failed', reason, ms: performance.now() - t0 })
    const why = await this.unavailable()
    if (why !== null) return failed(why)
    let t: Target
    try {
      t = await this.#target(threadId, timeoutMs)
    } catch (err) {
      return failed((err as Error).message)
    }
    // Trap 2: one capture of a thread at a time.
    const run = t.last.then(async () => await this.#capture(t, timeoutMs, t0))
    t.last = run.catch(() => {})
    try {
      return await run
    } catch (err) {
      return failed((err as Error).message)
    }
  }

  async #capture (t: Target, timeoutMs: number, t0: number): Promise<Backtrace> {
    const ms = (): number => performance.now() - t0
    try {
      await withTimeout(this.#send(t, 'Debugger.enable'), timeoutMs, `thread ${t.threadId} did not answer within ${timeoutMs} ms (blocked in a system call?)`)
    } catch (err) {
      // The messages stay queued on the thread and run when it is back in JavaScript: the disable
      // queued after the enable leaves the Debugger domain off then.
      this.#send(t, 'Debugger.disable').catch(() => {})
      return { kind: 'failed', reason: (err as Error).message, ms: ms() }
    }
    const paused = new Promise<Debugger.PausedEventDataType>((resolve) => { t.onPaused = resolve })
    let params: Debugger.PausedEventDataType
    try {
      await withTimeout(this.#send(t, 'Debugger.pause'), timeoutMs, `thread ${t.threadId} did not acknowledge the pause`)
      params = await withTimeout(paused, PAUSE_WAIT_MS, 'no pause')
    } catch (err) {
      t.onPaused = null
      // Trap 4: Debugger.disable drops the pending pause.
      await withTimeout(this.#send(t, 'Debugger.disable'), TIDY_WAIT_MS, 'disable').catch(() => {})
      if ((err as Error).message === 'no pause') return { kind: 'idle', ms: ms() }
      return { kind: 'failed', reason: (err as Error).message, ms: ms() }
    }
    const frames = params.callFrames.map((f) => this.#frame(t, f))
    // Trap 2: wait for the resumed event, emitted once the thread has left its pause loop.
    const resumed = new Promise<void>((resolve) => { t.onResumed = resolve })
    try {
      await withTimeout(this.#send(t, 'Debugger.resume'), timeoutMs, 'resume')
      await withTimeout(resumed, timeoutMs, 'resumed')
    } catch {
      t.onResumed = null
    }
    await withTimeout(this.#send(t, 'Debugger.disable'), TIDY_WAIT_MS, 'disable').catch(() => {})
    return { kind: 'stack', frames, ms: ms() }
  }

  #frame (t: Target, f: Debugger.CallFrame): StackFrame {
    const fn = f.functionLocation
    return {
      functionName: f.functionName,
      // Trap 3: the frame's own url is empty.
      url: f.url !== '' ? f.url : t.scripts.get(f.location.scriptId) ?? '',
      line: f.location.lineNumber + 1,
      column: (f.location.columnNumber ?? 0) + 1,
      functionLine: fn === undefined ? 0 : fn.lineNumber + 1,
      functionColumn: fn === undefined ? 0 : (fn.columnNumber ?? 0) + 1
    }
  }

  /**
   * What keeps the thread's event loop alive (`process.getActiveResourcesInfo()`: Timeout,
   * TCPSocketWrap, FSReqCallback...), or null when it does not answer. Answers while the thread
   * is idle (trap 5: a synchronous expression).
   */
  async activeResources (threadId: number, timeoutMs: number): Promise<string[] | null> {
    if (await this.unavailable() !== null) return null
    try {
      const t = await this.#target(threadId, timeoutMs)
      const r = await withTimeout(this.#send(t, 'Runtime.evaluate', {
        expression: 'process.getActiveResourcesInfo()',
        returnByValue: true,
        silent: true
      }), timeoutMs, 'Runtime.evaluate') as { result?: { value?: unknown } }
      const value = r.result?.value
      return Array.isArray(value) ? value.map(String) : null
    } catch {
      return null
    }
  }
}

/** `p`, or a rejection with `message` after `ms`. The timer is ref'd: it keeps the event loop alive meanwhile (trap 4). */
async function withTimeout<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
