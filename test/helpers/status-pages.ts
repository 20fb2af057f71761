// Requests for the status and ping pages as a web server sends them (SCRIPT_NAME, SCRIPT_FILENAME
// under a document root, QUERY_STRING), and strict parsers for the page formats: each parser fails
// on anything that is not php-fpm's layout, so a test that reads a figure also checks the format.

import { FcgiConnection, buildCgiParams } from '../../src/client/fcgi-client.ts'
import type { FcgiResponse } from '../../src/client/fcgi-client.ts'

export interface PageRequestOptions {
  method?: string
  headers?: Array<[string, string]>
  body?: string
  /** Where SCRIPT_FILENAME points: the document root + the path. */
  documentRoot?: string
  /** Leave SCRIPT_FILENAME out (php answers 404 then). */
  noScriptFilename?: boolean
  /** Params to set or replace (SCRIPT_NAME, REQUEST_URI...). */
  params?: Record<string, string>
}

/** One request on a connection of its own. `address`: a port on 127.0.0.1, or any client address. */
export async function request (address: number | string, uri: string, opts: PageRequestOptions = {}): Promise<FcgiResponse> {
  const conn = await FcgiConnection.connect(typeof address === 'number' ? `127.0.0.1:${address}` : address)
  try {
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body)
    const params = buildCgiParams({
      uri,
      method: opts.method,
      headers: opts.headers,
      documentRoot: opts.documentRoot ?? '/srv/www',
      bodyLength: body?.length
    })
    if (opts.noScriptFilename === true) delete params.SCRIPT_FILENAME
    Object.assign(params, opts.params ?? {})
    return await conn.request({ params, body }, { keepConn: false, timeoutMs: 20_000 })
  } finally {
    await conn.close()
  }
}

/** The CGI header block as sent (everything before the body). */
export function headOf (res: FcgiResponse): string {
  return res.raw.subarray(0, res.raw.length - res.body.length).toString('latin1')
}

export interface TextPage {
  /** Pool fields by label, in order. */
  readonly pool: Map<string, string>
  readonly processes: Array<Map<string, string>>
}

export const POOL_LABELS = [
  'pool', 'process manager', 'start time', 'start since', 'accepted conn', 'listen queue', 'max listen queue', 'listen queue len',
  'idle processes', 'active processes', 'total processes', 'max active processes', 'max children reached', 'slow requests'
]
export const PROCESS_LABELS = [
  'pid', 'state', 'start time', 'start since', 'requests', 'request duration', 'request method', 'request URI', 'content length',
  'user', 'script', 'last request cpu', 'last request memory'
]
/** The JSON keys (and HTML process headers) of a process: the text labels with php's "request uri". */
export const PROCESS_KEYS = PROCESS_LABELS.map((l) => l === 'request URI' ? 'request uri' : l)

/** php's plain text: `label:` padded so that values start at column 23, blocks of processes after 24 asterisks. */
export function parseText (body: string): TextPage {
  if (!body.endsWith('\n')) throw new Error('the text page must end with a newline')
  const [first, ...rest] = body.split('\n\n************************\n')
  const block = (text: string, labels: string[]): Map<string, string> => {
    const lines = text.replace(/\n$/, '').split('\n')
    const map = new Map<string, string>()
    for (const line of lines) {
      const colon = line.indexOf(':')
      const label = line.slice(0, colon)
      if (colon === -1 || !/^ +$/.test(line.slice(colon + 1, 22)) || line[22] === ' ') throw new Error(`not php's text layout: ${JSON.stringify(line)}`)
      map.set(label, line.slice(22))
    }
    if (JSON.stringify([...map.keys()]) !== JSON.stringify(labels)) throw new Error(`labels ${JSON.stringify([...map.keys()])}, expected ${JSON.stringify(labels)}`)
    return map
  }
  return { pool: block(first ?? '', POOL_LABELS), processes: rest.map((p) => block(p, PROCESS_LABELS)) }
}

/** A number from a text field. */
export function num (map: Map<string, string>, label: string): number {
  const v = map.get(label)
  if (v === undefined || !/^-?[0-9]+(\.[0-9]+)?$/.test(v)) throw new Error(`${label}: not a number: ${String(v)}`)
  return Number(v)
}

export interface XmlElement {
  readonly name: string
  readonly children: XmlElement[]
  text: string
}

/**
 * A strict parser for the XML (and XHTML) the status page sends: elements, attributes, text with
 * the five predefined entities and numeric references only; throws on anything unbalanced.
 */
export function parseXml (text: string): XmlElement {
  let i = 0
  const root: XmlElement = { name: '#document', children: [], text: '' }
  const stack: XmlElement[] = [root]
  const prologue = /^<\?xml version="1\.0" \?>\n|^<!DOCTYPE [^>]*>\n/.exec(text)
  if (prologue !== null) i = prologue[0].length
  while (i < text.length) {
    const top = stack[stack.length - 1]!
    if (text[i] === '<') {
      const end = text.indexOf('>', i)
      if (end === -1) throw new Error(`unterminated tag at ${i}`)
      const tag = text.slice(i + 1, end)
      i = end + 1
      if (tag.startsWith('/')) {
        if (tag.slice(1) !== top.name) throw new Error(`</${tag.slice(1)}> closes <${top.name}>`)
        stack.pop()
        continue
      }
      const m = /^([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<&]*")*)\s*$/.exec(tag)
      if (m === null) throw new Error(`malformed tag <${tag}>`)
      const el: XmlElement = { name: m[1]!, children: [], text: '' }
      top.children.push(el)
      stack.push(el)
      continue
    }
    const next = text.indexOf('<', i)
    const chunk = text.slice(i, next === -1 ? text.length : next)
    if (/&(?!(amp|lt|gt|quot|apos|#[0-9]+);)/.test(chunk) || chunk.includes('>')) throw new Error(`unescaped text ${JSON.stringify(chunk)}`)
    if (stack.length === 1 && chunk.trim() !== '') throw new Error(`text outside the root: ${JSON.stringify(chunk)}`)
    top.text += chunk.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;|&#0*39;/g, "'").replace(/&amp;/g, '&')
    i = next === -1 ? text.length : next
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]?.name ?? ''}>`)
  if (root.children.length !== 1) throw new Error('not exactly one root element')
  return root.children[0]!
}

/** OpenMetrics text as php sends it: metric name -> { type, help, value }; throws on any other line. */
export function parseOpenMetrics (body: string): Map<string, { type: string, help: string, value: number }> {
  if (!body.endsWith('# EOF\n')) throw new Error('OpenMetrics must end with "# EOF\\n"')
  const out = new Map<string, { type: string, help: string, value: number }>()
  const pending = new Map<string, { type?: string, help?: string }>()
  for (const line of body.slice(0, -'# EOF\n'.length).split('\n').filter((l) => l !== '')) {
    let m = /^# (HELP|TYPE) (phpfpm_[a-z_]+) (.+)$/.exec(line)
    if (m !== null) {
      const entry = pending.get(m[2]!) ?? {}
      if (m[1] === 'TYPE') {
        if (!['gauge', 'counter'].includes(m[3]!)) throw new Error(`bad type: ${line}`)
        entry.type = m[3]
      } else {
        entry.help = m[3]
      }
      pending.set(m[2]!, entry)
      continue
    }
    m = /^(phpfpm_[a-z_]+) ([0-9]+)$/.exec(line)
    if (m === null) throw new Error(`not an OpenMetrics line: ${JSON.stringify(line)}`)
    const meta = pending.get(m[1]!)
    if (meta?.type === undefined || meta.help === undefined || out.has(m[1]!)) throw new Error(`sample without HELP and TYPE, or repeated: ${line}`)
    out.set(m[1]!, { type: meta.type, help: meta.help, value: Number(m[2]) })
  }
  return out
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `probe` until it returns a value that is not undefined (every 20 ms, up to `timeoutMs`). */
export async function waitFor<T> (probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}
