// php-fpm's ping and status pages (php-fpm.md §4.1-4.3, §5), answered by the server on the main
// thread as soon as a request's params are in (server/exchange.ts paramsDone), before script
// resolution and security.limit_extensions, and never dispatched to a thread: so they answer even
// when every thread is busy and requests queue (php needs pm.status_listen for that; its status
// page is served by a worker).
//
// Which request is one, as php decides: an exact, case-sensitive compare of SCRIPT_NAME (the query
// string is not part of it) with ping.path, then pm.status_path; only when a script path came
// (SCRIPT_FILENAME or PATH_TRANSLATED, which need not exist: a request without one is php's 404).
// node-fpm difference: in a pool with a `handler`, which serves requests without SCRIPT_FILENAME,
// none is needed here either.
//
// Counting: a ping or status request on the pool's own listener counts in "accepted conn" (php
// counts every request its workers read, the status request itself included, so the page shows
// itself). A request on the pm.status_listen address does not: php serves those in a hidden pool
// with its own counters.

import type { Pool } from '../pool/pool.ts'
import { serverResponse } from '../server/responder.ts'
import { PING_HEAD } from './heads.ts'

/** A page ready to write: the CGI header block and the body (null for HEAD). */
export interface OwnPage {
  readonly head: string
  readonly body: Uint8Array | null
}

/** What the exchange knows once the params are in. */
export interface PageRequest {
  /** SCRIPT_NAME (undefined: not sent). */
  readonly scriptName: string | undefined
  readonly query: string
  /** SCRIPT_FILENAME or PATH_TRANSLATED (undefined: neither was sent). */
  readonly scriptPath: string | undefined
  readonly isHead: boolean
}

/** What every connection of a listener shares, as far as these pages go. */
export interface PageContext {
  readonly pool: Pool
  /** The pm.status_listen listener: only the status page, every other request is 404. */
  readonly statusOnly?: boolean
  /**
   * Renders the status page (status/status-page.ts); pm.accept = threads: asks the main thread,
   * which has the figures. Given by the context so that a thread does not load the renderers.
   */
  readonly statusPage: (query: string, isHead: boolean) => OwnPage | Promise<OwnPage>
}

/** The path the pm.status_listen listener serves: pm.status_path, `/` when unset (php §4.8). */
export function statusListenPath (statusPath: string | null): string {
  return statusPath === null || statusPath === '' ? '/' : statusPath
}

/**
 * The ping or status page for this request, or (pm.status_listen) a 404 for anything else;
 * null: not one of them, the request goes on to its script.
 */
export function ownPage (ctx: PageContext, req: PageRequest): OwnPage | Promise<OwnPage> | null {
  const config = ctx.pool.config
  const statusOnly = ctx.statusOnly === true
  // An empty value is no path (php tests `path && *path`).
  const statusPath = statusOnly ? statusListenPath(config.pm.statusPath) : config.pm.statusPath || null
  const pingPath = statusOnly ? null : config.ping.path || null
  if (statusPath === null && pingPath === null) return null
  const eligible = req.scriptName !== undefined &&
    ((req.scriptPath !== undefined && req.scriptPath !== '') || config.handler !== null)
  if (eligible && pingPath !== null && req.scriptName === pingPath) {
    ctx.pool.countAnswered()
    return { head: PING_HEAD, body: req.isHead ? null : Buffer.from(config.ping.response ?? 'pong') }
  }
  if (eligible && statusPath !== null && req.scriptName === statusPath) {
    if (!statusOnly) ctx.pool.countAnswered()
    return ctx.statusPage(req.query, req.isHead)
  }
  if (!statusOnly) return null
  const notFound = serverResponse('notFound', req.isHead)
  return { head: notFound.head, body: notFound.body }
}
