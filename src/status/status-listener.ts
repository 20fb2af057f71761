// pm.status_listen (php-fpm.md §4.8): one more listening address per pool that serves only that
// pool's status page. php creates a hidden pool `<pool>_status` for it (ondemand, 2 children)
// that copies the parent's listen.allowed_clients, listen.owner/group/mode and pm.status_path, and
// reports the parent's scoreboard. Here it is one more Listener on the same pool, flagged
// statusOnly: the page is answered on the main thread (status/pages.ts) like on the pool's own
// listener, so no thread is involved. As in php: the path is pm.status_path, `/` when unset; ping
// is not served there; its requests do not count in the pool's "accepted conn" and are not in the
// pool's access log. Any other request gets 404 (php would run it as a script in the hidden pool).

import { parseListenAddress } from '../config/values.ts'
import type { PoolConfig } from '../config/types.ts'
import { Listener } from '../server/listener.ts'
import type { ServerContext } from '../server/connection.ts'

/**
 * The pool's config as the status listener uses it (name for messages, listen address), or null
 * without pm.status_listen. The address was checked at load (config/validate.ts).
 */
export function statusListenConfig (pool: PoolConfig): PoolConfig | null {
  const address = pool.pm.statusListen
  if (address === null || address === '') return null
  return {
    ...pool,
    name: `${pool.name}_status`,
    listen: { ...pool.listen, address, target: parseListenAddress(address, pool.prefix) }
  }
}

/** Key of the status socket among the sockets the supervisor binds (pool name -> fd): no pool name can hold a NUL. */
export function statusListenKey (poolName: string): string {
  return `${poolName}\u0000status`
}

/** The listener for the pool's pm.status_listen address (not listening yet), or null without one. */
export function createStatusListener (pool: PoolConfig, ctx: ServerContext): Listener | null {
  const config = statusListenConfig(pool)
  // php's hidden status pool has no access.log: monitoring's polls do not fill the pool's.
  return config === null ? null : new Listener(config, { ...ctx, statusOnly: true, accessLog: null })
}
