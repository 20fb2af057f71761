// Where a request's params keep what node-fpm reads of them. A web server sends the same names in
// the same order request after request (nginx's fastcgi_params, Apache's, Caddy's): only the values
// change. So the positions of REQUEST_URI, SCRIPT_FILENAME, the HTTP_* headers... are worked out
// once per list of names (a shape) and read directly after that. A request's names are compared
// once with the shapes seen last; before, the server's routing (server/exchange.ts), the Request
// (worker/cgi-request.ts) and the env object (worker/env.ts) each went through every name again.

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
}

/** Shapes kept, most recently used first: one web server's, a few (a health check, another front). */
const SHAPES_MAX = 16
const shapes: ParamsShape[] = []

/**
 * The shape of `params` (flat pairs): one seen before when its names are the same, in the same
 * order, else a new one (which then goes first). The names are compared once here, and only here.
 */
export function shapeOf (params: readonly string[]): ParamsShape {
  const pairs = params.length >> 1
  for (let s = 0; s < shapes.length; s++) {
    const shape = shapes[s]!
    if (shape.names.length !== pairs || !sameNames(shape.names, params)) continue
    if (s > 0) {
      shapes.splice(s, 1)
      shapes.unshift(shape)
    }
    return shape
  }
  const shape = newShape(params)
  if (shapes.length >= SHAPES_MAX) shapes.pop()
  shapes.unshift(shape)
  return shape
}

/** The value at `at` (a shape's position), or `absent`. */
export function valueAt<T> (params: readonly string[], at: number, absent: T): string | T {
  return at < 0 ? absent : params[at] as string
}

function sameNames (names: readonly string[], params: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== params[2 * i]) return false
  }
  return true
}

function newShape (params: readonly string[]): ParamsShape {
  const names: string[] = []
  let requestUri = -1
  let scriptName = -1
  let queryString = -1
  let scriptFilename = -1
  let pathTranslated = -1
  let contentLength = -1
  let contentType = -1
  let https = -1
  let pathInfo = -1
  let serverName = -1
  let serverPort = -1
  let requestScheme = -1
  let httpHost = -1
  const requestMethods: number[] = []
  const headerAt: number[] = []
  const headerNames: string[] = []
  for (let i = 0; i + 1 < params.length; i += 2) {
    // A name of its own: a shape outlives the request, and a slice would keep its whole params text.
    const name = ownString(params[i]!)
    names.push(name)
    const at = i + 1
    if (name.startsWith('HTTP_') && name.length > 5) {
      if (name === 'HTTP_CONTENT_TYPE' || name === 'HTTP_CONTENT_LENGTH') continue
      if (name === 'HTTP_HOST') httpHost = at
      headerAt.push(at)
      headerNames.push(headerNameOf(name))
      continue
    }
    switch (name) {
      case 'REQUEST_URI': requestUri = at; break
      case 'SCRIPT_NAME': scriptName = at; break
      case 'QUERY_STRING': queryString = at; break
      case 'SCRIPT_FILENAME': scriptFilename = at; break
      case 'PATH_TRANSLATED': pathTranslated = at; break
      case 'CONTENT_LENGTH': contentLength = at; break
      case 'CONTENT_TYPE': contentType = at; break
      case 'HTTPS': https = at; break
      case 'PATH_INFO': pathInfo = at; break
      case 'SERVER_NAME': serverName = at; break
      case 'SERVER_PORT': serverPort = at; break
      case 'REQUEST_SCHEME': requestScheme = at; break
      case 'REQUEST_METHOD': requestMethods.push(at); break
    }
  }
  return {
    names,
    requestUri,
    scriptName,
    queryString,
    scriptFilename,
    pathTranslated,
    contentLength,
    contentType,
    https,
    pathInfo,
    serverName,
    serverPort,
    requestScheme,
    httpHost,
    requestMethods,
    headerAt,
    headerNames,
    env: null
  }
}

/** HTTP_X_FORWARDED_FOR -> x-forwarded-for. */
export function headerNameOf (param: string): string {
  return param.slice(5).toLowerCase().replaceAll('_', '-')
}

/** A flat copy of `name` (a property key is one: the string V8 keeps for it, not a slice of anything). */
function ownString (name: string): string {
  return Object.keys({ [name]: 0 })[0] ?? name
}
