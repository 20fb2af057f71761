// The logger of the server code that runs on a thread with pm.accept = threads (connection.ts,
// exchange.ts, listener.ts): each line goes to the main thread as a LOG message, which writes it
// to the error log with the pool's fields, as if the main thread had logged it. Lines below the
// server's log_level are dropped here, before they cost a message.

import type { MessagePort } from 'node:worker_threads'
import { Msg } from '../common/messages.ts'
import type { LogMessage } from '../common/messages.ts'
import type { Logger } from '../log/logger.ts'
import { serializeError } from './handler-context.ts'

type Level = LogMessage['level']
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }

export function threadLogger (port: MessagePort, level: Level): Logger {
  const min = RANK[level]
  const at = (lvl: Level) => (first: unknown, second?: string): void => {
    if (RANK[lvl] < min) return
    let msg: string
    let fields: Record<string, unknown> = {}
    if (typeof first === 'string') {
      msg = first
    } else {
      fields = { ...(first as Record<string, unknown>) }
      msg = second ?? ''
    }
    const err = fields.err
    delete fields.err
    const line: LogMessage = { t: Msg.LOG, id: 0, level: lvl, msg, err: err === undefined ? null : serializeError(err), fields }
    port.postMessage(line)
  }
  const logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
    isLevelEnabled: (l: Level) => RANK[l] >= min
  }
  return logger as unknown as Logger
}
