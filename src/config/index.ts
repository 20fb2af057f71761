// The configuration loader's public surface: php-fpm's ini dialect in, a frozen FpmConfig out.

export { loadConfig, DEFAULT_POOLS_PATTERN } from './load.ts'
export type { LoadOptions, LoadResult, ConfigNotice } from './load.ts'
export { dumpConfig } from './dump.ts'
export { parseListenAddress, UNIX_PATH_MAX } from './values.ts'
export { DIRECTIVES, findDirective, findArrayDirective, directivesOf } from './directives.ts'
export type { Directive, DirectiveKind, DirectiveScope, DirectiveStatus } from './directives.ts'
export type * from './types.ts'
