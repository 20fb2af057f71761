// The status page's five formats and the ping page, byte for byte as php-fpm 8.2 sends them
// (php-fpm.md §4.3, §4.6, §5; checked against a running php-fpm8.2 by test/integration/
// status-php-compat.test.ts): plain text, JSON, XML, HTML and OpenMetrics (their header blocks are
// in status/heads.ts). Pure functions of a StatusReport (status/report.ts): the exporters that parse php's
// pages (php-fpm_exporter, Datadog, Zabbix templates) parse these.
//
// One deliberate difference: php escapes only the query string, so an unusual pool name, script or
// user makes its JSON or XML invalid (php issue #11464); here every string is escaped for its format.

import type { ProcessReport, StatusReport } from './report.ts'

export type StatusFormat = 'text' | 'json' | 'xml' | 'html' | 'openmetrics'

/**
 * The format a query string asks for: php only checks which keys exist in $_GET (values ignored),
 * html > xml > json > openmetrics > text; `full` adds the processes (not to OpenMetrics).
 */
export function statusQuery (query: string): { format: StatusFormat, full: boolean } {
  const keys = new Set<string>()
  if (query !== '') {
    for (const pair of query.split('&')) {
      const eq = pair.indexOf('=')
      keys.add(decodeKey(eq === -1 ? pair : pair.slice(0, eq)))
    }
  }
  const format: StatusFormat = keys.has('html') ? 'html' : keys.has('xml') ? 'xml' : keys.has('json') ? 'json' : keys.has('openmetrics') ? 'openmetrics' : 'text'
  return { format, full: keys.has('full') && format !== 'openmetrics' }
}

function decodeKey (key: string): string {
  try {
    return decodeURIComponent(key.replaceAll('+', ' '))
  } catch {
    return key
  }
}

/** The page body (UTF-8 text). */
export function renderStatus (r: StatusReport, format: StatusFormat): string {
  switch (format) {
    case 'text': return renderText(r)
    case 'json': return renderJson(r)
    case 'xml': return renderXml(r)
    case 'html': return renderHtml(r)
    case 'openmetrics': return renderOpenMetrics(r)
  }
}

// ---- the fields, in php's order, with each format's name ----

/** [text/html label, JSON key, XML element, value as text, value as JSON] */
type Field = readonly [label: string, key: string, element: string, text: string, json: string]

function poolFields (r: StatusReport, textTime: string): Field[] {
  return [
    ['pool', 'pool', 'pool', r.pool, JSON.stringify(r.pool)],
    ['process manager', 'process manager', 'process-manager', r.processManager, JSON.stringify(r.processManager)],
    ['start time', 'start time', 'start-time', textTime, String(r.startTime)],
    num('start since', r.startSince),
    num('accepted conn', r.acceptedConn),
    num('listen queue', r.listenQueue),
    num('max listen queue', r.maxListenQueue),
    num('listen queue len', r.listenQueueLen),
    num('idle processes', r.idleProcesses),
    num('active processes', r.activeProcesses),
    num('total processes', r.totalProcesses),
    num('max active processes', r.maxActiveProcesses),
    num('max children reached', r.maxChildrenReached),
    num('slow requests', r.slowRequests)
  ]
}

function processFields (p: ProcessReport, textTime: string): Field[] {
  const cpu = p.lastRequestCpu.toFixed(2)
  return [
    num('pid', p.pid),
    ['state', 'state', 'state', p.state, JSON.stringify(p.state)],
    ['start time', 'start time', 'start-time', textTime, String(p.startTime)],
    num('start since', p.startSince),
    num('requests', p.requests),
    num('request duration', p.requestDuration),
    str('request method', p.requestMethod),
    // php's one label spelt differently in text ("request URI") and elsewhere ("request uri").
    ['request URI', 'request uri', 'request-uri', p.requestUri, JSON.stringify(p.requestUri)],
    num('content length', p.contentLength),
    str('user', p.user),
    str('script', p.script),
    ['last request cpu', 'last request cpu', 'last-request-cpu', cpu, cpu],
    num('last request memory', p.lastRequestMemory)
  ]
}

function num (label: string, value: number): Field {
  return [label, label, label.replaceAll(' ', '-'), String(value), String(value)]
}

function str (label: string, value: string): Field {
  return [label, label, label.replaceAll(' ', '-'), value, JSON.stringify(value)]
}

// ---- text ----

function renderText (r: StatusReport): string {
  let out = textLines(poolFields(r, strftimeLocal(r.startTime)))
  for (const p of r.processes ?? []) {
    out += '\n************************\n' + textLines(processFields(p, strftimeLocal(p.startTime)))
  }
  return out
}

/** Values start at column 23, as php pads its labels. */
function textLines (fields: readonly Field[]): string {
  let out = ''
  for (const f of fields) out += `${(f[0] + ':').padEnd(22)}${f[3]}\n`
  return out
}

// ---- json ----

function renderJson (r: StatusReport): string {
  const pool = jsonObject(poolFields(r, ''))
  if (r.processes === null) return pool
  // php: the short object without its brace, then `, "processes":[` (with that space), then `]}`.
  return `${pool.slice(0, -1)}, "processes":[${r.processes.map((p) => jsonObject(processFields(p, ''))).join(',')}]}`
}

function jsonObject (fields: readonly Field[]): string {
  return `{${fields.map((f) => `${JSON.stringify(f[1])}:${f[4]}`).join(',')}}`
}

// ---- xml ----

function renderXml (r: StatusReport): string {
  let out = '<?xml version="1.0" ?>\n<status>\n'
  for (const f of poolFields(r, '')) out += `<${f[2]}>${xmlValue(f)}</${f[2]}>\n`
  if (r.processes !== null) {
    out += '<processes>\n'
    for (const p of r.processes) {
      out += '<process>'
      for (const f of processFields(p, '')) out += `<${f[2]}>${xmlValue(f)}</${f[2]}>`
      out += '</process>\n'
    }
    out += '</processes>\n'
  }
  return out + '</status>'
}

/** XML and JSON print start time as epoch seconds. */
function xmlValue (f: Field): string {
  return f[1] === 'start time' ? f[4] : escapeMarkup(f[3])
}

// ---- html ----

const HTML_HEAD = '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n' +
  '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n' +
  '<head><title>PHP-FPM Status Page</title></head>\n' +
  '<body>\n'

function renderHtml (r: StatusReport): string {
  let out = HTML_HEAD + '<table>\n'
  for (const f of poolFields(r, strftimeLocal(r.startTime))) out += `<tr><th>${f[1]}</th><td>${escapeMarkup(f[3])}</td></tr>\n`
  out += '</table>\n'
  if (r.processes === null) return out + '</body></html>'
  out += '<table border="1">\n<tr>'
  // The header row uses the JSON spelling ("request uri").
  for (const f of processFields(emptyProcess, '')) out += `<th>${f[1]}</th>`
  out += '</tr>\n'
  for (const p of r.processes) {
    out += '<tr>'
    for (const f of processFields(p, strftimeLocal(p.startTime))) out += `<td>${escapeMarkup(f[3])}</td>`
    out += '</tr>\n'
  }
  return out + '</table></body></html>'
}

const emptyProcess: ProcessReport = {
  pid: 0, state: '', startTime: 0, startSince: 0, requests: 0, requestDuration: 0, requestMethod: '', requestUri: '',
  contentLength: 0, user: '', script: '', lastRequestCpu: 0, lastRequestMemory: 0
}

function escapeMarkup (s: string): string {
  return s.replace(/[&<>"']/g, (c) => c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#039;')
}

// ---- openmetrics ----

function renderOpenMetrics (r: StatusReport): string {
  // OpenMetrics has no escaping for HELP text beyond \\, \n and ": a pool name can hold none of them
  // meaningfully, so they are dropped rather than risk a line an exporter cannot parse.
  const pool = r.pool.replace(/[\\\n"]/g, '')
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number, typeFirst = false): string => {
    const h = `# HELP phpfpm_${name} ${help}\n`
    const t = `# TYPE phpfpm_${name} ${type}\n`
    return (typeFirst ? t + h : h + t) + `phpfpm_${name} ${value}\n`
  }
  return metric('up', 'gauge', `Could pool ${pool} using a ${r.processManager} PM on PHP-FPM be reached?`, 1) +
    metric('start_since', 'counter', 'The number of seconds since FPM has started.', r.startSince) +
    metric('accepted_connections', 'counter', 'The number of requests accepted by the pool.', r.acceptedConn) +
    metric('listen_queue', 'gauge', 'The number of requests in the queue of pending connections.', r.listenQueue) +
    metric('max_listen_queue', 'counter', 'The maximum number of requests in the queue of pending connections since FPM has started.', r.maxListenQueue) +
    // php prints TYPE before HELP for this one metric.
    metric('listen_queue_length', 'gauge', 'The size of the socket queue of pending connections.', r.listenQueueLen, true) +
    metric('idle_processes', 'gauge', 'The number of idle processes.', r.idleProcesses) +
    metric('active_processes', 'gauge', 'The number of active processes.', r.activeProcesses) +
    metric('total_processes', 'gauge', 'The number of idle + active processes.', r.totalProcesses) +
    metric('max_active_processes', 'counter', 'The maximum number of active processes since FPM has started.', r.maxActiveProcesses) +
    metric('max_children_reached', 'counter', "The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').", r.maxChildrenReached) +
    metric('slow_requests', 'counter', "The number of requests that exceeded your 'request_slowlog_timeout' value.", r.slowRequests) +
    '# EOF\n'
}

// ---- time ----

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** strftime `%d/%b/%Y:%H:%M:%S %z` in local time, as php prints start times in text and HTML. */
export function strftimeLocal (epochSec: number): string {
  const d = new Date(epochSec * 1000)
  const two = (n: number): string => String(n).padStart(2, '0')
  const offsetMin = -d.getTimezoneOffset()
  const abs = Math.abs(offsetMin)
  const zone = `${offsetMin < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`
  return `${two(d.getDate())}/${MONTHS[d.getMonth()] ?? ''}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`
}
