// Where the FastCGI client connects: a string as a user types it (the `listen` value of a pool,
// the first argument of `node-fpm request`) turned into `net.connect` options. The client-side
// twin of the listener's address parsing; it is not the listener's parser (a client never binds,
// so `*:9000` and `[::]:9000` are not accepted here).
//
//   9000                  TCP 127.0.0.1:9000 (php-fpm's bare-port listen means "all addresses")
//   127.0.0.1:9000        TCP; host may be a name (localhost:9000)
//   [::1]:9000            TCP over IPv6
//   /run/php/fpm.sock     unix socket (absolute path)
//   unix:/run/fpm.sock    unix socket, explicit prefix (unix:./rel.sock is relative to the cwd)
//   ./fpm.sock ../x.sock  unix socket, relative to the working directory
//   \\.\pipe\fpm         Windows named pipe (\\?\pipe\name too)

import { isIP } from 'node:net'
import { FpmError } from '../common/errors.ts'

/** Options for `net.connect`: TCP, or a unix socket / named pipe path. */
export type ClientAddress = { host: string, port: number } | { path: string }

function badAddress (s: string, why: string): FpmError {
  return new FpmError('FPM_ERR_CLIENT', `invalid address '${s}': ${why}`)
}

function parsePort (s: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw badAddress(s, `'${text}' is not a port number`)
  const port = Number(text)
  if (port < 1 || port > 65535) throw badAddress(s, `port ${port} is out of range (1-65535)`)
  return port
}

/** Parse an address into `net.connect` options; throws an FpmError (code FPM_ERR_CLIENT) naming what is wrong. */
export function parseClientAddress (s: string): ClientAddress {
  const a = s.trim()
  if (a === '') throw badAddress(s, 'empty address')
  if (/^\\\\[.?]\\pipe\\./i.test(a)) return { path: a }
  if (a.startsWith('unix:')) {
    const path = a.slice(5)
    if (path === '') throw badAddress(s, 'no socket path after unix:')
    return { path }
  }
  if (a.startsWith('/') || a.startsWith('./') || a.startsWith('../')) return { path: a }
  if (/^\d+$/.test(a)) return { host: '127.0.0.1', port: parsePort(s, a) }
  if (a.startsWith('[')) {
    const close = a.indexOf(']')
    if (close < 0) throw badAddress(s, "missing ']' after an IPv6 address")
    const host = a.slice(1, close)
    if (isIP(host) !== 6) throw badAddress(s, `'${host}' is not an IPv6 address`)
    if (a[close + 1] !== ':') throw badAddress(s, "expected ':port' after ']'")
    return { host, port: parsePort(s, a.slice(close + 2)) }
  }
  const colon = a.lastIndexOf(':')
  if (colon < 0) throw badAddress(s, 'expected host:port, [ipv6]:port, a port, or a unix socket path (absolute, ./relative or unix:path)')
  const host = a.slice(0, colon)
  if (host === '') throw badAddress(s, 'empty host before the port')
  if (host.includes(':')) throw badAddress(s, 'an IPv6 address must be written in brackets: [::1]:9000')
  if (host === '*') throw badAddress(s, "'*' is a listen address, not one to connect to")
  return { host, port: parsePort(s, a.slice(colon + 1)) }
}

/** The address as it should appear in a message. */
export function formatClientAddress (a: ClientAddress): string {
  if ('path' in a) return a.path
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
