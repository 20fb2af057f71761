// node-fpm's status and ping pages against a running php-fpm (Debian's php-fpm8.2): the same
// requests to both, with the same pool name and process manager, must give the same bytes once the
// figures (digits) and the start time are blanked: headers, labels, order, punctuation, every
// format. For `full`, the process entries are compared by their fields (the values and the number
// of processes differ by nature). Skipped when php-fpm is not installed (required under CI).

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { findPhpFpm, startPhpFpm } from '../../bench/php-fpm.ts'
import type { PhpFpmHandle } from '../../bench/php-fpm.ts'
import { startFpm } from '../helpers/fpm-tester.ts'
import type { FpmHandle } from '../helpers/fpm-tester.ts'
import { headOf, parseText, parseXml, request } from '../helpers/status-pages.ts'

const inCI = process.env.CI !== undefined && process.env.CI !== ''
const havePhp = findPhpFpm() !== null
const skip = !havePhp && !inCI ? 'php-fpm not installed' : false

const DIRECTIVES = `pm.status_path = /status
ping.path = /ping
php_admin_flag[expose_php] = off
`

/** The page with its figures blanked: start times, then every run of digits. */
function blank (page: string): string {
  return page
    .replace(/\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}/g, 'TIME')
    .replace(/\d+/g, 'N')
}

/** The whole response (header block and body) as the web server gets it. */
async function page (address: number | string, uri: string, method = 'GET'): Promise<string> {
  const res = await request(address, uri, { method })
  return headOf(res) + res.body.toString('latin1')
}

describe('status and ping pages: the same as php-fpm 8.2', { skip }, () => {
  let php: PhpFpmHandle
  let fpm: FpmHandle
  before(async () => {
    php = await startPhpFpm({ workers: 2, poolDirectives: DIRECTIVES })
    fpm = await startFpm(`
[global]
error_log = stderr

[bench]
listen = 127.0.0.1:{{PORT}}
pm = static
pm.max_children = 2
root = {{DIR}}
${DIRECTIVES.split('\n').filter((l) => !l.startsWith('php_admin')).join('\n')}
`, { args: ['--no-supervisor'] })
  })
  after(async () => {
    await fpm?.stop()
    await php?.stop()
  })

  test('short pages, every format, byte for byte but the figures', async () => {
    for (const query of ['', 'json', 'xml', 'html', 'openmetrics', 'openmetrics&full']) {
      const uri = `/status?${query}`
      assert.equal(blank(await page(fpm.port, uri)), blank(await page(php.address, uri)), uri)
    }
  })

  test('which format a query picks', async () => {
    const type = (p: string): string => /^Content-type: (.*)$/im.exec(p)?.[1] ?? ''
    for (const query of ['json&html', 'json&xml', 'openmetrics&json', 'json=0', 'JSON', 'full&xml&json']) {
      const uri = `/status?${query}`
      assert.equal(type(await page(fpm.port, uri)), type(await page(php.address, uri)), uri)
    }
  })

  test('full pages: the same fields per process, in the same layout', async () => {
    // text: labels of the pool and of each process
    const ourText = parseText((await request(fpm.port, '/status?full')).body.toString())
    const phpText = parseText((await request(php.address, '/status?full')).body.toString())
    assert.ok(phpText.processes.length > 0 && ourText.processes.length > 0)
    assert.deepEqual([...ourText.processes[0]!.keys()], [...phpText.processes[0]!.keys()])

    // json: the keys, and php's `, "processes":[` join
    const ourJson = (await request(fpm.port, '/status?json&full')).body.toString()
    const phpJson = (await request(php.address, '/status?json&full')).body.toString()
    assert.match(ourJson, /"slow requests":\d+, "processes":\[\{"pid":\d+,/)
    assert.match(phpJson, /"slow requests":\d+, "processes":\[\{"pid":\d+,/)
    const keys = (text: string): string[][] => {
      const j = JSON.parse(text) as { processes: Array<Record<string, unknown>> }
      return [Object.keys(j), Object.keys(j.processes[0] ?? {})]
    }
    assert.deepEqual(keys(ourJson), keys(phpJson))
    // a process entry's types: numbers stay numbers, "last request cpu" printed with two decimals
    assert.match(ourJson, /"last request cpu":\d+\.\d{2},"last request memory":\d+\}/)
    assert.match(phpJson, /"last request cpu":\d+\.\d{2},"last request memory":\d+\}/)

    // xml: element names of a process, one process per line
    const names = (text: string): string[] => parseXml(text).children.find((c) => c.name === 'processes')?.children[0]?.children.map((c) => c.name) ?? []
    const ourXml = (await request(fpm.port, '/status?xml&full')).body.toString()
    const phpXml = (await request(php.address, '/status?xml&full')).body.toString()
    assert.deepEqual(names(ourXml), names(phpXml))
    assert.match(ourXml, /<slow-requests>\d+<\/slow-requests>\n<processes>\n<process><pid>/)
    assert.match(phpXml, /<slow-requests>\d+<\/slow-requests>\n<processes>\n<process><pid>/)
    assert.ok(ourXml.endsWith('</process>\n</processes>\n</status>') && phpXml.endsWith('</process>\n</processes>\n</status>'))

    // html: the process table's header row, byte for byte, and its end
    const headerRow = (text: string): string => /<table border="1">\n<tr>.*?<\/tr>\n/.exec(text)?.[0] ?? ''
    const ourHtml = (await request(fpm.port, '/status?html&full')).body.toString()
    const phpHtml = (await request(php.address, '/status?html&full')).body.toString()
    assert.notEqual(headerRow(phpHtml), '')
    assert.equal(headerRow(ourHtml), headerRow(phpHtml))
    assert.ok(ourHtml.endsWith('</tr>\n</table></body></html>') && phpHtml.endsWith('</tr>\n</table></body></html>'))
  })

  test('ping and HEAD ping, byte for byte', async () => {
    assert.equal(await page(fpm.port, '/ping'), await page(php.address, '/ping'))
    assert.equal(await page(fpm.port, '/ping?x', 'HEAD'), await page(php.address, '/ping?x', 'HEAD'))
  })
})
