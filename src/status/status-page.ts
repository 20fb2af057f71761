// The status page of a pool, rendered from its figures (php's formats, full or not). On the main
// thread only: a thread that accepts connections (pm.accept = threads) asks the main thread.

import type { Pool } from '../pool/pool.ts'
import { STATUS_HEADS } from './heads.ts'
import { renderStatus, statusQuery } from './formats.ts'
import type { OwnPage } from './pages.ts'
import { buildReport } from './report.ts'

/** The status page of `pool` for `query` (php's formats, full or not). */
export function statusPage (pool: Pool, query: string, isHead: boolean): OwnPage {
  const { format, full } = statusQuery(query)
  const head = STATUS_HEADS[format]
  if (isHead) return { head, body: null }
  const report = buildReport({ name: pool.config.name, mode: pool.config.pm.mode }, pool.stats, full ? pool.threadsSnapshot() : null, Date.now())
  return { head, body: Buffer.from(renderStatus(report, format)) }
}
