// `node-fpm request`: send one FastCGI request and print the response, what php-fpm users do with
// `cgi-fcgi` (and curl-like: -X, -H, -d, -i). Talks to any FastCGI responder (node-fpm, php-fpm).
// A thin layer over src/client/fcgi-client.ts: it never calls process.exit, it sets process.exitCode.

import { createReadStream } from 'node:fs'
import type { ReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { InvalidArgumentError } from 'commander'
import type { Command } from 'commander'

/** Exit statuses of `node-fpm request` (usage errors are the main program's business). */
export const REQUEST_EXIT_OK = 0
export const REQUEST_EXIT_HTTP_ERROR = 1
export const REQUEST_EXIT_FAILURE = 2

interface RequestCliOptions {
  script?: string
  root?: string
  method?: string
  header?: string[]
  data?: string
  param?: string[]
  include?: boolean
  timeout: number
}

const HELP_AFTER = `
Sends one FastCGI request (role RESPONDER, what cgi-fcgi does for php-fpm) and writes the
response body to stdout, byte for byte. FCGI_STDERR output goes to stderr.

The params are those nginx's fastcgi_params sends (REQUEST_METHOD, REQUEST_URI, SCRIPT_NAME,
QUERY_STRING, DOCUMENT_ROOT, SERVER_*, REMOTE_*, CONTENT_TYPE, CONTENT_LENGTH, HTTP_HOST, HTTP_*...).
SCRIPT_FILENAME is --script when given (made absolute), else the URI's path under --root, else the
URI's path as is. With -d the method defaults to POST, CONTENT_LENGTH is set and CONTENT_TYPE is
application/x-www-form-urlencoded unless a Content-Type header is given. --param comes last and
overrides any of these.

<address> is a unix socket path (/path, ./path or unix:path), host:port, [ipv6]:port, a bare port
(127.0.0.1:port) or a Windows named pipe (\\\\.\\pipe\\name).

Exit status:
  0   the response status is below 400
  1   the response status is 400 or more (like curl --fail; the body is still printed)
  2   no valid response: connection refused or closed early, timeout, protocol error, malformed
      CGI response, request refused by the server, or an unreadable --data @file (one line on stderr)
  64  bad command line (unknown option, missing <address>)

Examples:
  node-fpm request /run/node-fpm/www.sock /hello --root /srv/www -i
  node-fpm request 127.0.0.1:9000 '/api?page=2' --script app.mjs -H 'Accept: application/json'
  node-fpm request 9000 /upload --script app.mjs -d @photo.jpg -H 'Content-Type: image/jpeg'
  node-fpm request /run/php/php8.2-fpm.sock /index.php --root /var/www/html --param HTTPS=on
`

// No default ([]) given to commander: it would print "(default: [])" in the help.
function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

function parseTimeout (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a number of milliseconds (0: no limit)')
  return n
}

function parseHeader (h: string): [string, string] {
  const i = h.indexOf(':')
  const name = i > 0 ? h.slice(0, i).trim() : ''
  if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw new InvalidArgumentError(`--header '${h}' is not 'Name: value'`)
  }
  return [name, h.slice(i + 1).trim()]
}

function parseParam (kv: string): [string, string] {
  const i = kv.indexOf('=')
  if (i <= 0) throw new InvalidArgumentError(`--param '${kv}' is not NAME=VALUE`)
  return [kv.slice(0, i), kv.slice(i + 1)]
}

async function readStdin (): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Adds `request <address> [uri]` to the program. */
export function registerRequestCommand (program: Command): void {
  program
    .command('request')
    .description('send one FastCGI request to a server (node-fpm, php-fpm) and print the response, like cgi-fcgi')
    .argument('<address>', 'FastCGI address: /path/to.sock, unix:path, host:port, [ipv6]:port or port')
    .argument('[uri]', 'request URI: path and optional query', '/')
    .option('--script <file>', 'SCRIPT_FILENAME (made absolute); default: the URI path under --root, else the URI path')
    .option('--root <dir>', 'DOCUMENT_ROOT (made absolute): SCRIPT_FILENAME = <dir> + the URI path')
    .option('-X, --method <method>', 'request method (default: GET, POST with -d)')
    .option('-H, --header <header>', "HTTP request header 'Name: value', sent as HTTP_NAME (repeatable)", collect)
    .option('-d, --data <data>', 'request body: the string, @file to stream a file, @- for stdin')
    .option('--param <name=value>', 'set a FastCGI param, overriding the computed ones (repeatable)', collect)
    .option('-i, --include', 'print the status line and the response headers before the body')
    .option('--timeout <ms>', 'time limit for connecting and for the whole request (0: none)', parseTimeout, 30000)
    .addHelpText('after', HELP_AFTER)
    .action(async (address: string, uri: string, opts: RequestCliOptions) => {
      process.exitCode = await runRequest(address, uri, opts)
    })
}

async function runRequest (address: string, uri: string, opts: RequestCliOptions): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`node-fpm request: ${message.replace(/\s*\n\s*/g, ' ')}\n`)
    return REQUEST_EXIT_FAILURE
  }
  let headers: [string, string][]
  let extra: Record<string, string>
  try {
    headers = (opts.header ?? []).map(parseHeader)
    extra = Object.fromEntries((opts.param ?? []).map(parseParam))
  } catch (err) {
    return fail((err as Error).message)
  }

  // Body: a string, a file streamed from disk, or stdin.
  let body: Uint8Array | AsyncIterable<Uint8Array> | null = null
  let file: ReadStream | null = null
  let bodyLength: number | undefined
  if (opts.data !== undefined) {
    if (opts.data === '@-') {
      const buf = await readStdin()
      body = buf
      bodyLength = buf.length
    } else if (opts.data.startsWith('@')) {
      const name = opts.data.slice(1)
      try {
        const st = await stat(name)
        if (!st.isFile()) return fail(`--data @${name}: not a regular file`)
        bodyLength = st.size
      } catch (err) {
        return fail(`--data @${name}: ${(err as Error).message}`)
      }
      body = file = createReadStream(name)
    } else {
      const buf = Buffer.from(opts.data, 'utf8')
      body = buf
      bodyLength = buf.length
    }
    if (!headers.some(([n]) => n.toLowerCase() === 'content-type')) {
      headers.push(['Content-Type', 'application/x-www-form-urlencoded'])
    }
  }

  // Loaded here: every node-fpm command (the supervisor's start too) loads this module for its options.
  const { buildCgiParams, fcgiRequest, findCgiHeadEnd, parseCgiResponse } = await import('../client/fcgi-client.ts')
  const script = opts.script === undefined ? undefined : path.resolve(opts.script)
  const root = opts.root !== undefined ? path.resolve(opts.root) : script !== undefined ? path.dirname(script) : undefined
  const params = buildCgiParams({
    uri: uri === '' ? '/' : uri,
    method: opts.method ?? (opts.data !== undefined ? 'POST' : 'GET'),
    scriptFilename: script,
    documentRoot: root,
    headers,
    bodyLength,
    extra
  })
  // Without --script, SCRIPT_FILENAME is the URI's path under --root, or as is without --root
  // (buildCgiParams' default); with --script alone, DOCUMENT_ROOT is the script's folder.

  // Stream the body to stdout as it arrives; hold back only the CGI header block.
  let head: Buffer | null = Buffer.alloc(0)
  const out = process.stdout
  const onStdout = (chunk: Buffer): void => {
    if (head === null) {
      out.write(chunk)
      return
    }
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    if (findCgiHeadEnd(head) < 0) return
    const parsed = parseCgiResponse(head)
    head = null
    if (opts.include === true) {
      let text = `HTTP/1.1 ${parsed.status} ${parsed.statusText}\r\n`
      for (const [name, value] of parsed.headers) text += `${name}: ${value}\r\n`
      out.write(Buffer.from(text + '\r\n', 'latin1'))
    }
    if (parsed.body.length > 0) out.write(parsed.body)
  }

  let status: number
  try {
    const res = await fcgiRequest(address, { params, body }, {
      timeoutMs: opts.timeout,
      connectTimeoutMs: opts.timeout,
      onStdout
    })
    if (res.stderr !== '') process.stderr.write(res.stderr.endsWith('\n') ? res.stderr : res.stderr + '\n')
    status = res.status
  } catch (err) {
    return fail((err as Error).message)
  } finally {
    file?.destroy()
  }
  return status >= 400 ? REQUEST_EXIT_HTTP_ERROR : REQUEST_EXIT_OK
}
