// The status page's formats byte for byte (status/formats.ts) for one fixed report: the expected
// texts are php-fpm 8.2's layouts (php-fpm.md §4.6, and what a running php-fpm8.2 sends: see
// test/integration/status-php-compat.test.ts), with this report's values. Also the query keys and
// their precedence, and the start time in local time.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { renderStatus, statusQuery, strftimeLocal } from '../../../src/status/formats.ts'
import { PING_HEAD, STATUS_HEADS } from '../../../src/status/heads.ts'
import type { ProcessReport, StatusReport } from '../../../src/status/report.ts'

// +0530: a non-zero offset with minutes, fixed for the test (Node applies a TZ change at once).
process.env.TZ = 'Asia/Kolkata'

const START = 1622701306 // 2021-06-03T06:21:46Z = 11:51:46 +0530

const proc1: ProcessReport = {
  pid: 7,
  state: 'Idle',
  startTime: START + 1,
  startSince: 61,
  requests: 3,
  requestDuration: 1250,
  requestMethod: 'GET',
  requestUri: '/index.php?x=1&y=<2>',
  contentLength: 0,
  user: '-',
  script: '/var/www/html/index.php',
  lastRequestCpu: 0,
  lastRequestMemory: 2097152
}
const proc2: ProcessReport = {
  ...proc1,
  pid: 8,
  state: 'Running',
  requests: 1,
  requestDuration: 52,
  requestMethod: 'POST',
  requestUri: '/a "b"',
  contentLength: 5,
  user: 'alice',
  script: '/srv/app.mjs',
  lastRequestMemory: 0
}

const short: StatusReport = {
  pool: 'www',
  processManager: 'dynamic',
  startTime: START,
  startSince: 62,
  acceptedConn: 5,
  listenQueue: 0,
  maxListenQueue: 1,
  listenQueueLen: 4096,
  idleProcesses: 1,
  activeProcesses: 1,
  totalProcesses: 2,
  maxActiveProcesses: 1,
  maxChildrenReached: 0,
  slowRequests: 0,
  processes: null
}
const full: StatusReport = { ...short, processes: [proc1, proc2] }

const TEXT_SHORT = `pool:                 www
process manager:      dynamic
start time:           03/Jun/2021:11:51:46 +0530
start since:          62
accepted conn:        5
listen queue:         0
max listen queue:     1
listen queue len:     4096
idle processes:       1
active processes:     1
total processes:      2
max active processes: 1
max children reached: 0
slow requests:        0
`

describe('status formats', () => {
  test('start times print in local time as strftime %d/%b/%Y:%H:%M:%S %z', () => {
    assert.equal(strftimeLocal(START), '03/Jun/2021:11:51:46 +0530')
    process.env.TZ = 'America/St_Johns' // -0230 in June
    try {
      assert.equal(strftimeLocal(START), '03/Jun/2021:03:51:46 -0230')
    } finally {
      process.env.TZ = 'Asia/Kolkata'
    }
  })

  test('plain text, short and full', () => {
    assert.equal(renderStatus(short, 'text'), TEXT_SHORT)
    assert.equal(renderStatus(full, 'text'), TEXT_SHORT + `
************************
pid:                  7
state:                Idle
start time:           03/Jun/2021:11:51:47 +0530
start since:          61
requests:             3
request duration:     1250
request method:       GET
request URI:          /index.php?x=1&y=<2>
content length:       0
user:                 -
script:               /var/www/html/index.php
last request cpu:     0.00
last request memory:  2097152

************************
pid:                  8
state:                Running
start time:           03/Jun/2021:11:51:47 +0530
start since:          61
requests:             1
request duration:     52
request method:       POST
request URI:          /a "b"
content length:       5
user:                 alice
script:               /srv/app.mjs
last request cpu:     0.00
last request memory:  0
`)
  })

  test('JSON: one line, php\'s ", \\"processes\\":[" join, a valid document', () => {
    const shortJson = '{"pool":"www","process manager":"dynamic","start time":1622701306,"start since":62,"accepted conn":5,' +
      '"listen queue":0,"max listen queue":1,"listen queue len":4096,"idle processes":1,"active processes":1,"total processes":2,' +
      '"max active processes":1,"max children reached":0,"slow requests":0}'
    assert.equal(renderStatus(short, 'json'), shortJson)
    const text = renderStatus(full, 'json')
    assert.equal(text, shortJson.slice(0, -1) + ', "processes":[' +
      '{"pid":7,"state":"Idle","start time":1622701307,"start since":61,"requests":3,"request duration":1250,"request method":"GET",' +
      '"request uri":"/index.php?x=1&y=<2>","content length":0,"user":"-","script":"/var/www/html/index.php","last request cpu":0.00,"last request memory":2097152},' +
      '{"pid":8,"state":"Running","start time":1622701307,"start since":61,"requests":1,"request duration":52,"request method":"POST",' +
      '"request uri":"/a \\"b\\"","content length":5,"user":"alice","script":"/srv/app.mjs","last request cpu":0.00,"last request memory":0}]}')
    const parsed = JSON.parse(text) as { processes: Array<Record<string, unknown>> }
    assert.equal(parsed.processes[1]?.['request uri'], '/a "b"')
  })

  test('XML: one element per line, processes one per line, entities escaped', () => {
    const head = '<?xml version="1.0" ?>\n<status>\n<pool>www</pool>\n<process-manager>dynamic</process-manager>\n' +
      '<start-time>1622701306</start-time>\n<start-since>62</start-since>\n<accepted-conn>5</accepted-conn>\n<listen-queue>0</listen-queue>\n' +
      '<max-listen-queue>1</max-listen-queue>\n<listen-queue-len>4096</listen-queue-len>\n<idle-processes>1</idle-processes>\n' +
      '<active-processes>1</active-processes>\n<total-processes>2</total-processes>\n<max-active-processes>1</max-active-processes>\n' +
      '<max-children-reached>0</max-children-reached>\n<slow-requests>0</slow-requests>\n'
    assert.equal(renderStatus(short, 'xml'), head + '</status>')
    assert.equal(renderStatus(full, 'xml'), head + '<processes>\n' +
      '<process><pid>7</pid><state>Idle</state><start-time>1622701307</start-time><start-since>61</start-since><requests>3</requests>' +
      '<request-duration>1250</request-duration><request-method>GET</request-method><request-uri>/index.php?x=1&amp;y=&lt;2&gt;</request-uri>' +
      '<content-length>0</content-length><user>-</user><script>/var/www/html/index.php</script><last-request-cpu>0.00</last-request-cpu>' +
      '<last-request-memory>2097152</last-request-memory></process>\n' +
      '<process><pid>8</pid><state>Running</state><start-time>1622701307</start-time><start-since>61</start-since><requests>1</requests>' +
      '<request-duration>52</request-duration><request-method>POST</request-method><request-uri>/a &quot;b&quot;</request-uri>' +
      '<content-length>5</content-length><user>alice</user><script>/srv/app.mjs</script><last-request-cpu>0.00</last-request-cpu>' +
      '<last-request-memory>0</last-request-memory></process>\n' +
      '</processes>\n</status>')
  })

  test('HTML: the pool table, and for full the process table', () => {
    const head = '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n' +
      '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n<head><title>PHP-FPM Status Page</title></head>\n<body>\n<table>\n' +
      '<tr><th>pool</th><td>www</td></tr>\n<tr><th>process manager</th><td>dynamic</td></tr>\n' +
      '<tr><th>start time</th><td>03/Jun/2021:11:51:46 +0530</td></tr>\n<tr><th>start since</th><td>62</td></tr>\n' +
      '<tr><th>accepted conn</th><td>5</td></tr>\n<tr><th>listen queue</th><td>0</td></tr>\n<tr><th>max listen queue</th><td>1</td></tr>\n' +
      '<tr><th>listen queue len</th><td>4096</td></tr>\n<tr><th>idle processes</th><td>1</td></tr>\n<tr><th>active processes</th><td>1</td></tr>\n' +
      '<tr><th>total processes</th><td>2</td></tr>\n<tr><th>max active processes</th><td>1</td></tr>\n' +
      '<tr><th>max children reached</th><td>0</td></tr>\n<tr><th>slow requests</th><td>0</td></tr>\n</table>\n'
    assert.equal(renderStatus(short, 'html'), head + '</body></html>')
    assert.equal(renderStatus(full, 'html'), head + '<table border="1">\n' +
      '<tr><th>pid</th><th>state</th><th>start time</th><th>start since</th><th>requests</th><th>request duration</th><th>request method</th>' +
      '<th>request uri</th><th>content length</th><th>user</th><th>script</th><th>last request cpu</th><th>last request memory</th></tr>\n' +
      '<tr><td>7</td><td>Idle</td><td>03/Jun/2021:11:51:47 +0530</td><td>61</td><td>3</td><td>1250</td><td>GET</td>' +
      '<td>/index.php?x=1&amp;y=&lt;2&gt;</td><td>0</td><td>-</td><td>/var/www/html/index.php</td><td>0.00</td><td>2097152</td></tr>\n' +
      '<tr><td>8</td><td>Running</td><td>03/Jun/2021:11:51:47 +0530</td><td>61</td><td>1</td><td>52</td><td>POST</td>' +
      '<td>/a &quot;b&quot;</td><td>5</td><td>alice</td><td>/srv/app.mjs</td><td>0.00</td><td>0</td></tr>\n' +
      '</table></body></html>')
  })

  test('OpenMetrics: php\'s metrics, TYPE before HELP for the queue length, the same for full', () => {
    const expected = `# HELP phpfpm_up Could pool www using a dynamic PM on PHP-FPM be reached?
# TYPE phpfpm_up gauge
phpfpm_up 1
# HELP phpfpm_start_since The number of seconds since FPM has started.
# TYPE phpfpm_start_since counter
phpfpm_start_since 62
# HELP phpfpm_accepted_connections The number of requests accepted by the pool.
# TYPE phpfpm_accepted_connections counter
phpfpm_accepted_connections 5
# HELP phpfpm_listen_queue The number of requests in the queue of pending connections.
# TYPE phpfpm_listen_queue gauge
phpfpm_listen_queue 0
# HELP phpfpm_max_listen_queue The maximum number of requests in the queue of pending connections since FPM has started.
# TYPE phpfpm_max_listen_queue counter
phpfpm_max_listen_queue 1
# TYPE phpfpm_listen_queue_length gauge
# HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.
phpfpm_listen_queue_length 4096
# HELP phpfpm_idle_processes The number of idle processes.
# TYPE phpfpm_idle_processes gauge
phpfpm_idle_processes 1
# HELP phpfpm_active_processes The number of active processes.
# TYPE phpfpm_active_processes gauge
phpfpm_active_processes 1
# HELP phpfpm_total_processes The number of idle + active processes.
# TYPE phpfpm_total_processes gauge
phpfpm_total_processes 2
# HELP phpfpm_max_active_processes The maximum number of active processes since FPM has started.
# TYPE phpfpm_max_active_processes counter
phpfpm_max_active_processes 1
# HELP phpfpm_max_children_reached The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').
# TYPE phpfpm_max_children_reached counter
phpfpm_max_children_reached 0
# HELP phpfpm_slow_requests The number of requests that exceeded your 'request_slowlog_timeout' value.
# TYPE phpfpm_slow_requests counter
phpfpm_slow_requests 0
# EOF
`
    assert.equal(renderStatus(short, 'openmetrics'), expected)
    assert.equal(renderStatus(full, 'openmetrics'), expected)
  })

  test('header blocks: no-cache headers and php\'s Content-type spellings', () => {
    const noCache = 'Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\nCache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n'
    assert.deepEqual(STATUS_HEADS, {
      text: noCache + 'Content-type: text/plain;charset=UTF-8\r\n\r\n',
      json: noCache + 'Content-Type: application/json\r\n\r\n',
      xml: noCache + 'Content-type: text/xml;charset=UTF-8\r\n\r\n',
      html: noCache + 'Content-type: text/html;charset=UTF-8\r\n\r\n',
      openmetrics: noCache + 'Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\r\n'
    })
    assert.equal(PING_HEAD, 'Content-type: text/plain;charset=UTF-8\r\n' + noCache + '\r\n')
  })

  test('query keys: present or not (values ignored), html > xml > json > openmetrics > text; full never for OpenMetrics', () => {
    const cases: Array<[string, string, boolean]> = [
      ['', 'text', false],
      ['full', 'text', true],
      ['json', 'json', false],
      ['json=0&full=no', 'json', true],
      ['full&json', 'json', true],
      ['json&xml', 'xml', false],
      ['xml&html&json', 'html', false],
      ['openmetrics&json', 'json', false],
      ['openmetrics&full', 'openmetrics', false],
      ['JSON', 'text', false],
      ['jsonx&fullx', 'text', false],
      ['%6Ason', 'json', false]
    ]
    for (const [query, format, isFull] of cases) assert.deepEqual(statusQuery(query), { format, full: isFull }, query)
  })
})
