// Is `scheme://authority + target` already what the WHATWG URL parser would serialize it to?
// Then Request.url can be that string as is, without running the parser on every request (~1 us
// of the ~20 a request costs through nginx). Deliberately conservative: any doubt answers false
// and the caller parses. What the common request looks like passes: a lower-case host name or a
// dotted-quad IPv4 address, an explicit non-default port, and a path and query made of the
// characters a URL keeps as they are, without dot segments. test/unit/worker/canonical-url.test.ts
// checks the promise against the parser itself, on generated URLs.

/** Characters of a path the parser leaves as they are (and that do not end the path). */
const PATH_SAFE = new Uint8Array(128)
/** Characters of a query the parser leaves as they are (a special URL's query encodes "'"). */
const QUERY_SAFE = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&()*+,;=:@/%') {
  PATH_SAFE[c.charCodeAt(0)] = 1
  QUERY_SAFE[c.charCodeAt(0)] = 1
}
PATH_SAFE[0x27] = 1 // '
QUERY_SAFE[0x3f] = 1 // ?

const SLASH = 0x2f
const DOT = 0x2e
const QUESTION = 0x3f
const PERCENT = 0x25

/** `scheme` is 'http' or 'https'; `target` starts with '/'. */
export function isCanonicalHttpUrl (scheme: string, authority: string, target: string): boolean {
  // Requests keep coming with the same Host: its verdict is kept (a string compare, not a scan).
  if (authority !== lastAuthority || scheme !== lastScheme) {
    lastAuthority = authority
    lastScheme = scheme
    lastVerdict = isCanonicalAuthority(scheme, authority)
  }
  return lastVerdict && isCanonicalTarget(target)
}

let lastAuthority = ''
let lastScheme = ''
let lastVerdict = false

function isCanonicalAuthority (scheme: string, authority: string): boolean {
  const colon = authority.indexOf(':')
  const host = colon === -1 ? authority : authority.slice(0, colon)
  if (!isCanonicalHost(host)) return false
  if (colon === -1) return true
  const port = authority.slice(colon + 1)
  if (port.length === 0 || port.length > 5 || (port.charCodeAt(0) === 0x30 && port.length > 1)) return false
  for (let i = 0; i < port.length; i++) {
    const c = port.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  const number = Number(port)
  if (number > 65535) return false
  return !(scheme === 'http' ? number === 80 : number === 443)
}

/**
 * Lower-case labels of [a-z0-9-], none empty, none punycode (the parser checks those); a name whose
 * last label starts with a digit is read as IPv4 by the parser, so it must be a canonical dotted quad.
 */
function isCanonicalHost (host: string): boolean {
  if (host.length === 0 || host.startsWith('xn--') || host.includes('.xn--')) return false
  let labelStart = 0
  for (let i = 0; i <= host.length; i++) {
    const c = i === host.length ? DOT : host.charCodeAt(i)
    if (c === DOT) {
      if (i === labelStart) return false
      labelStart = i + 1
    } else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d)) {
      return false
    }
  }
  const last = host.charCodeAt(host.lastIndexOf('.') + 1)
  return last >= 0x30 && last <= 0x39 ? isDottedQuad(host) : true
}

function isDottedQuad (host: string): boolean {
  const parts = host.split('.')
  if (parts.length !== 4) return false
  for (const part of parts) {
    if (part.length > 3 || (part.length > 1 && part.charCodeAt(0) === 0x30)) return false
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i)
      if (c < 0x30 || c > 0x39) return false
    }
    if (Number(part) > 255) return false
  }
  return true
}

/** The path: safe characters, no "." or ".." segment, no "%2e" (the parser reads it as a dot). */
function isCanonicalTarget (target: string): boolean {
  if (target.charCodeAt(0) !== SLASH) return false
  let i = 1
  for (; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (c === QUESTION) break
    if (c >= 0x80 || PATH_SAFE[c] !== 1) return false
    if (c === DOT && target.charCodeAt(i - 1) === SLASH && isDotSegment(target, i)) return false
    if (c === PERCENT && (target.charCodeAt(i + 1) === 0x32) && (target.charCodeAt(i + 2) | 0x20) === 0x65) return false
  }
  for (i++; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (c >= 0x80 || QUERY_SAFE[c] !== 1) return false
  }
  return true
}

/** At a '.' that starts a segment: is the segment "." or ".."? */
function isDotSegment (target: string, dot: number): boolean {
  let end = dot + 1
  if (target.charCodeAt(end) === DOT) end++
  return end === target.length || target.charCodeAt(end) === SLASH || target.charCodeAt(end) === QUESTION
}
