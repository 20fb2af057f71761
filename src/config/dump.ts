// The effective configuration as `php-fpm -tt` prints it (fpm_conf.c fpm_conf_dump, php-fpm.md
// §3.7): `[global]`, one TAB-indented `name = value` line per directive in table order, a blank
// line, then each pool likewise. Values come from the loaded config through the table's field
// paths, so a directive added to the table is dumped without touching this file. The caller adds
// the log prefix (NOTICE:) and "configuration file ... test is successful".

import { DIRECTIVES } from './directives.ts'
import type { Directive } from './directives.ts'
import { getField } from './load.ts'
import type { DirectiveValue, FpmConfig, GlobalConfig, PoolConfig } from './types.ts'

export function dumpConfig (config: FpmConfig): string[] {
  const lines = ['[global]', ...scopeLines('global', config.global), '']
  for (const pool of config.pools) lines.push(`[${pool.name}]`, ...scopeLines('pool', pool), '')
  return lines
}

function scopeLines (scope: 'global' | 'pool', source: GlobalConfig | PoolConfig): string[] {
  const lines: string[] = []
  for (const d of DIRECTIVES) {
    if (d.scope !== scope) continue
    if (d.kind === 'array') lines.push(...arrayLines(d, source as PoolConfig))
    else lines.push(`\t${d.name} = ${d.format(valueOf(d, source))}`)
  }
  return lines
}

function valueOf (d: Directive, source: GlobalConfig | PoolConfig): DirectiveValue {
  if (d.field === null) return source.ignored[d.name] ?? d.default
  return d.fromField(getField(source, d.field) as DirectiveValue)
}

/** php prints php_flag entries among php_value (as 1/0), so the *_flag rows print nothing. */
function arrayLines (d: Directive, pool: PoolConfig): string[] {
  switch (d.name) {
    case 'env': return entries('env', pool.env)
    case 'php_value': return entries('php_value', pool.phpValues)
    case 'php_admin_value': return entries('php_admin_value', pool.phpAdminValues)
    case 'access.suppress_path': return pool.access.suppressPaths.map(v => `\taccess.suppress_path[] = ${v}`)
    default: return []
  }
}

function entries (name: string, record: Readonly<Record<string, string>>): string[] {
  return Object.entries(record).map(([k, v]) => `\t${name}[${k}] = ${v}`)
}
