// Where a request's params keep what node-fpm reads of them. A web server sends the same names in
// the same order request after request (nginx's fastcgi_params, Apache's, Caddy's): only the values
// change. So the positions of REQUEST_URI, SCRIPT_FILENAME, the HTTP_* headers... are worked out
// once per list of names (a shape) and read directly after that. A request's names are compared
// once with the shapes seen last; before, the server's routing (server/exchange.ts), the Request
// (worker/cgi-request.ts) and the env object (worker/env.ts) each went through every name again.

import { ExpectedNames, paramValue } from '../fastcgi/params.ts'

/** The handler's env object for one shape (worker/env.ts compiles it). */
export type EnvFactory = (params: readonly string[], poolEnv: Readonly<Record<string, string>>) => Record<string, string>

/** What a shape keeps for worker/env.ts: the object factory for one pool env. */
export interface EnvSlot {
  readonly poolEnv: Readonly<Record<string, string>>
  /** Requests of this shape seen with this pool env. */
  seen: number
  make: EnvFactory | null
}

/**
 * A list of param names, and where the variables node-fpm reads are in the flat params
 * `[name0, value0, name1, value1, ...]`: each position is the index of a value (odd), of the last
 * occurrence of that name (as php's $_SERVER: later duplicates win); -1 when the name is absent.
 */
export interface ParamsShape {
  readonly names: readonly string[]
  readonly requestUri: number
  readonly scriptName: number
  readonly queryString: number
  readonly scriptFilename: number
  readonly pathTranslated: number
  readonly contentLength: number
  readonly contentType: number
  readonly https: number
  readonly pathInfo: number
  readonly serverName: number
  readonly serverPort: number
  readonly requestScheme: number
  readonly httpHost: number
  /** Every REQUEST_METHOD, in order: the Request takes the last one that is not empty. */
  readonly requestMethods: readonly number[]
  /** The HTTP_* params, in order, but HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH (RFC 3875 §4.1.18: CONTENT_* carry them). */
  readonly headerAt: readonly number[]
  /** Their header names: HTTP_X_FORWARDED_FOR -> x-forwarded-for. */
  readonly headerNames: readonly string[]
  env: EnvSlot | null
  /** Its names for the next decode (fastcgi/params.ts), made when the shape is seen a second time. */
  expected: ExpectedNames | null
}

/** Shapes kept, most recently used first: one web server's, a few (a health check, another front). */
const SHAPES_MAX = 16
const shapes: ParamsShape[] = []

/**
 * The shape of `params` (flat pairs, or names only: fastcgi/params.ts decodeParamNames): one seen
 * before when its names are the same, in the same order, else a new one (which then goes first). The
 * names are compared once here, and only here.
 */
export function shapeOf (params: readonly (string | number)[]): ParamsShape {
  const pairs = params.length >> 1
  for (let s = 0; s < shapes.length; s++) {
    const shape = shapes[s]!
    if (shape.names.length !== pairs || !sameNames(shape.names, params)) continue
    if (s > 0) {
      shapes.splice(s, 1)
      shapes.unshift(shape)
    }
    // Seen twice: worth the bytes (a client whose headers vary makes a shape per request, never reused).
    shape.expected ??= new ExpectedNames(shape.names)
    return shape
  }
  const shape = newShape(params)
  if (shapes.length >= SHAPES_MAX) shapes.pop()
  shapes.unshift(shape)
  return shape
}

/**
 * The names the next params list most likely has (those of the shape found last), for the decode
 * (fastcgi/params.ts ExpectedNames); null before a shape is seen twice.
 */
export function expectedNames (): ExpectedNames | null {
  return shapes[0]?.expected ?? null
}

/**
 * The value at `at` (a shape's position), or `absent`. Params of names only (fastcgi/params.ts
 * decodeParamNames) hold where the pair is in their `text` instead: the value is decoded from there.
 */
export function valueAt<T> (params: readonly (string | number)[], at: number, absent: T, text = ''): string | T {
  if (at < 0) return absent
  const value = params[at]!
  return typeof value === 'string' ? value : paramValue(text, value)
}

/** Last name first: lists of one web server differ in their HTTP_* params, which come last. */
function sameNames (names: readonly string[], params: readonly (string | number)[]): boolean {
  for (let i = names.length - 1; i >= 0; i--) {
    if (names[i] !== params[2 * i]) return false
  }
  return true
}

function newShape (params: readonly (string | number)[]): ParamsShape {
  const names: string[] = []
  const requestMethods: number[] = []
  const headerAt: number[] = []
  const headerNames: string[] = []
  const shape: { -readonly [K in keyof ParamsShape]: ParamsShape[K] } = {
    names,
    requestUri: -1,
    scriptName: -1,
    queryString: -1,
    scriptFilename: -1,
    pathTranslated: -1,
    contentLength: -1,
    contentType: -1,
    https: -1,
    pathInfo: -1,
    serverName: -1,
    serverPort: -1,
    requestScheme: -1,
    httpHost: -1,
    requestMethods,
    headerAt,
    headerNames,
    env: null,
    expected: null
  }
  for (let i = 0; i + 1 < params.length; i += 2) {
    // The request's own strings: a long name is a slice of its params text, which the shape then
    // keeps (16 shapes at most, each holding one text: as env.ts's shapes did before).
    const name = params[i] as string
    names.push(name)
    const at = i + 1
    if (isHttpParam(name)) {
      if (name === 'HTTP_CONTENT_TYPE' || name === 'HTTP_CONTENT_LENGTH') continue
      if (name === 'HTTP_HOST') shape.httpHost = at
      headerAt.push(at)
      headerNames.push(headerNameOf(name))
      continue
    }
    // By length first: most names (DOCUMENT_ROOT, SERVER_SOFTWARE...) are none of these, and a string
    // switch would compare each with every case (a new shape is made for every request of a client
    // whose headers vary: that must stay cheap).
    switch (name.length) {
      case 5: if (name === 'HTTPS') shape.https = at; break
      case 9: if (name === 'PATH_INFO') shape.pathInfo = at; break
      case 11:
        if (name === 'REQUEST_URI') shape.requestUri = at
        else if (name === 'SCRIPT_NAME') shape.scriptName = at
        else if (name === 'SERVER_NAME') shape.serverName = at
        else if (name === 'SERVER_PORT') shape.serverPort = at
        break
      case 12:
        if (name === 'QUERY_STRING') shape.queryString = at
        else if (name === 'CONTENT_TYPE') shape.contentType = at
        break
      case 14:
        if (name === 'CONTENT_LENGTH') shape.contentLength = at
        else if (name === 'REQUEST_METHOD') requestMethods.push(at)
        else if (name === 'REQUEST_SCHEME') shape.requestScheme = at
        break
      case 15:
        if (name === 'SCRIPT_FILENAME') shape.scriptFilename = at
        else if (name === 'PATH_TRANSLATED') shape.pathTranslated = at
        break
    }
  }
  return shape
}

/** Starts with HTTP_ and has more (without a call). */
function isHttpParam (name: string): boolean {
  return name.length > 5 && name.charCodeAt(4) === 0x5f && name.charCodeAt(0) === 0x48 && name.charCodeAt(1) === 0x54 &&
    name.charCodeAt(2) === 0x54 && name.charCodeAt(3) === 0x50
}

const HEADER_NAMES_MAX = 1024
const headerNameCache = new Map<string, string>()

/** HTTP_X_FORWARDED_FOR -> x-forwarded-for (cached: the set of names seen is small). */
export function headerNameOf (param: string): string {
  let name = headerNameCache.get(param)
  if (name === undefined) {
    name = param.slice(5).toLowerCase().replaceAll('_', '-')
    if (headerNameCache.size < HEADER_NAMES_MAX) headerNameCache.set(param, name)
  }
  return name
}
