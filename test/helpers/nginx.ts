// A real nginx in front of a FastCGI backend, for tests and benchmarks.
//
// Every instance gets a fresh temp dir holding its nginx.conf, pid file, error log and all
// *_temp_path dirs, so it runs as root (or not) without touching /var or /etc (only
// /etc/nginx/fastcgi_params is read, when present). nginx runs in the foreground in
// single-process mode (`daemon off; master_process off`): it starts in a few ms and one
// signal ends it. It is spawned under `setpriv --pdeathsig SIGKILL` when available, so it dies
// with the test process even when that is killed; on a normal exit a process 'exit' hook kills
// what is left and removes the temp dirs.

import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { forget, hasExited, isExecutable, sleep, spawnManaged, stopManaged, stopper } from '../../bench/managed-process.ts'
import type { ManagedProcess } from '../../bench/managed-process.ts'

export interface NginxOptions {
  /** FastCGI address of the backend: 'host:port', '[::1]:port' or an absolute unix socket path. */
  upstream: string
  /** `fastcgi_keep_conn on` and an upstream block with `keepalive 16`. */
  keepConn?: boolean
  /** The server's `root`: SCRIPT_FILENAME = $document_root$fastcgi_script_name. Default: the temp dir. */
  documentRoot?: string
  /** Raw nginx config inserted in the server block, before `location /` (tests may add routes). */
  extraLocations?: string
  /** client_max_body_size, default '200m'. */
  clientMaxBodySize?: string
  /** fastcgi_request_buffering, default true (nginx's default). */
  requestBuffering?: boolean
}

export interface NginxHandle {
  readonly port: number
  /** 'http://127.0.0.1:PORT' (no trailing slash). */
  readonly url: string
  /** The temp dir holding nginx.conf, the logs and the temp paths; removed by stop(). */
  readonly dir: string
  /** Path of nginx's error log (inside dir). */
  readonly errorLog: string
  /** Graceful stop (SIGQUIT, then SIGTERM, then SIGKILL), waits for the exit, removes dir. Idempotent. */
  stop (): Promise<void>
}

const START_TIMEOUT_MS = 10_000
const PORT_ATTEMPTS = 5

/** Debian's /etc/nginx/fastcgi_params, inlined so that nothing under /etc is needed (also bench/nginx-front.ts). */
export const STANDARD_FASTCGI_PARAMS = `
    fastcgi_param QUERY_STRING      $query_string;
    fastcgi_param REQUEST_METHOD    $request_method;
    fastcgi_param CONTENT_TYPE      $content_type;
    fastcgi_param CONTENT_LENGTH    $content_length;
    fastcgi_param SCRIPT_NAME       $fastcgi_script_name;
    fastcgi_param REQUEST_URI       $request_uri;
    fastcgi_param DOCUMENT_URI      $document_uri;
    fastcgi_param DOCUMENT_ROOT     $document_root;
    fastcgi_param SERVER_PROTOCOL   $server_protocol;
    fastcgi_param REQUEST_SCHEME    $scheme;
    fastcgi_param HTTPS             $https if_not_empty;
    fastcgi_param GATEWAY_INTERFACE CGI/1.1;
    fastcgi_param SERVER_SOFTWARE   nginx/$nginx_version;
    fastcgi_param REMOTE_ADDR       $remote_addr;
    fastcgi_param REMOTE_PORT       $remote_port;
    fastcgi_param SERVER_ADDR       $server_addr;
    fastcgi_param SERVER_PORT       $server_port;
    fastcgi_param SERVER_NAME       $server_name;
    fastcgi_param REDIRECT_STATUS   200;`

/** http{} lines that put nginx's temporary directories inside `dir` (Debian's are root's, under /var/lib/nginx). */
export function nginxTempPaths (dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${path.join(dir, `${kind}_temp`)};\n`).join('')
}

/** Path of the nginx binary: $NGINX_BIN, /usr/sbin/nginx, or the first `nginx` on PATH; null if none. */
export function findNginx (): string | null {
  const candidates: string[] = []
  if (process.env.NGINX_BIN !== undefined && process.env.NGINX_BIN !== '') candidates.push(process.env.NGINX_BIN)
  candidates.push('/usr/sbin/nginx')
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '') candidates.push(path.join(dir, 'nginx'))
  }
  candidates.push('/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx')
  for (const file of candidates) {
    if (isExecutable(file)) return file
  }
  return null
}

export async function startNginx (opts: NginxOptions): Promise<NginxHandle> {
  const bin = findNginx()
  if (bin === null) throw new Error('nginx not found (looked at $NGINX_BIN, /usr/sbin/nginx and PATH)')
  const upstream = fastcgiAddress(opts.upstream)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-fpm-nginx-'))
  try {
    // SIGKILL if we die, however we die
    const { managed, port, errorLog } = await launchNginx(bin, dir, (ctx) => renderConfig(opts, { ...ctx, dir, upstream }), { group: false, deathSignal: 'SIGKILL' })
    return makeHandle(managed, port, errorLog)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** An nginx started by launchNginx, accepting connections on 127.0.0.1:port. */
export interface LaunchedNginx {
  readonly managed: ManagedProcess
  readonly port: number
  readonly errorLog: string
  readonly configText: string
}

/**
 * Starts nginx on `dir` (its nginx.conf, pid file and error log go there) with the config that
 * `render` makes for a free port; tries another port when that one was taken meanwhile. Throws
 * with the error log and the config when nginx exits or does not accept connections in time.
 */
export async function launchNginx (bin: string, dir: string, render: (ctx: { port: number, pidFile: string, errorLog: string }) => string,
  spawnOpts: { group: boolean, deathSignal: NodeJS.Signals }): Promise<LaunchedNginx> {
  const errorLog = path.join(dir, 'error.log')
  const confFile = path.join(dir, 'nginx.conf')
  const pidFile = path.join(dir, 'nginx.pid')
  writeFileSync(errorLog, '')
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const configText = render({ port, pidFile, errorLog })
    writeFileSync(confFile, configText)
    const logStart = statSync(errorLog).size
    const managed = spawnManaged(bin, ['-p', dir + '/', '-c', confFile, '-e', errorLog], errorLog, { dir, ...spawnOpts })
    const child = managed.child
    const outcome = await waitReady(child, pidFile, port)
    if (outcome === 'ready') return { managed, port, errorLog, configText }
    forget(managed)
    await stopManaged(managed, [])
    const newLog = readFileSync(errorLog, 'utf8').slice(logStart)
    if (outcome === 'exited' && /Address already in use/i.test(newLog) && attempt < PORT_ATTEMPTS) continue
    const why = outcome === 'exited'
      ? `nginx exited during startup (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`
      : `nginx did not accept connections on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms`
    throw new Error(`${why}\n--- ${errorLog} ---\n${readFileSync(errorLog, 'utf8')}\n--- ${confFile} ---\n${configText}`)
  }
}

function makeHandle (entry: ManagedProcess, port: number, errorLog: string): NginxHandle {
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir: entry.dir,
    errorLog,
    stop: stopper(entry, ['SIGQUIT', 'SIGTERM'])
  }
}

interface ConfigContext { dir: string, port: number, upstream: string, errorLog: string, pidFile: string }

function renderConfig (opts: NginxOptions, ctx: ConfigContext): string {
  const params = existsSync('/etc/nginx/fastcgi_params')
    ? '    include /etc/nginx/fastcgi_params;'
    : STANDARD_FASTCGI_PARAMS
  const keepConn = opts.keepConn === true
  const pass = keepConn ? 'fastcgi_backend' : ctx.upstream
  const upstreamBlock = keepConn
    ? `  upstream fastcgi_backend {\n    server ${ctx.upstream};\n    keepalive 16;\n  }\n`
    : ''
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0
  return `# generated by test/helpers/nginx.ts
${asRoot ? 'user root;\n' : ''}daemon off;
master_process off;
worker_processes 1;
pid ${ctx.pidFile};
error_log ${ctx.errorLog} notice;

events {
  worker_connections 4096;
}

http {
  access_log off;
${nginxTempPaths(ctx.dir)}  client_max_body_size ${opts.clientMaxBodySize ?? '200m'};
  keepalive_requests 100000;

${upstreamBlock}  server {
    listen 127.0.0.1:${ctx.port};
    server_name localhost;
    root ${opts.documentRoot ?? ctx.dir};
${opts.extraLocations !== undefined && opts.extraLocations !== '' ? `\n${opts.extraLocations}\n` : ''}
    location / {
  ${params}
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_pass ${pass};
      fastcgi_keep_conn ${keepConn ? 'on' : 'off'};
      fastcgi_request_buffering ${opts.requestBuffering === false ? 'off' : 'on'};
    }
  }
}
`
}

/** nginx's spelling of a FastCGI address: 'unix:/path' for a socket path, host:port as is. */
function fastcgiAddress (upstream: string): string {
  if (upstream.startsWith('/')) return `unix:${upstream}`
  if (upstream.startsWith('unix:')) return upstream
  if (/^(\[[0-9a-fA-F:.]+\]|[^\s:;[\]]+):\d{1,5}$/.test(upstream)) return upstream
  throw new Error(`startNginx: upstream must be 'host:port', '[v6]:port' or an absolute unix socket path, got ${JSON.stringify(upstream)}`)
}

/** A port that was free a moment ago: bind 127.0.0.1:0, read it, close. */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => { resolve(port) })
    })
  })
}

/**
 * Ready once the pid file names our child (nginx writes it only after it opened its listening
 * sockets, so a port stolen by someone else can't fool us) and the port accepts a connection.
 */
async function waitReady (child: ChildProcess, pidFile: string, port: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (hasExited(child)) return 'exited'
    if (readPid(pidFile) === child.pid && await canConnect(port)) {
      return hasExited(child) ? 'exited' : 'ready'
    }
    await sleep(10)
  }
  return hasExited(child) ? 'exited' : 'timeout'
}

function readPid (file: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10)
    return Number.isFinite(n) ? n : null
  } catch {
    return null
  }
}

function canConnect (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' })
    sock.setTimeout(1000)
    sock.once('connect', () => { sock.destroy(); resolve(true) })
    sock.once('timeout', () => { sock.destroy(); resolve(false) })
    sock.once('error', () => { sock.destroy(); resolve(false) })
  })
}
