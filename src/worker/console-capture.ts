// Handler console output goes to the server's error log, tagged with the pool (what php's
// catch_workers_output does for a child's stdout/stderr). console.* is replaced in each worker
// thread by functions that post a LOG message on the thread's channel; the main thread logs it
// through the pool's logger. Output written straight to process.stdout/stderr is not captured.

import { format } from 'node:util'
import type { MessagePort } from 'node:worker_threads'
import { Msg, type LogMessage } from '../common/messages.ts'

type Level = LogMessage['level']

const levels: Array<[keyof Console, Level]> = [
  ['log', 'info'], ['info', 'info'], ['debug', 'debug'], ['trace', 'debug'], ['warn', 'warn'], ['error', 'error']
]

export function captureConsole (port: MessagePort, threadId: number): void {
  const prefix = `thread ${threadId} said: `
  for (const [method, level] of levels) {
    (console as unknown as Record<string, (...args: unknown[]) => void>)[method] = (...args: unknown[]) => {
      const msg: LogMessage = { t: Msg.LOG, id: 0, level, msg: prefix + format(...args), err: null }
      port.postMessage(msg)
    }
  }
}
