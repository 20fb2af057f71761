// The header blocks of php-fpm's status and ping pages, byte for byte (status/formats.ts renders
// the bodies). Apart from the formats so that a thread that only routes these pages
// (pm.accept = threads: the main thread renders the status page) does not load the renderers.

import type { StatusFormat } from './formats.ts'

const NO_CACHE = 'Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\nCache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n'

/** The CGI header block of each format, php's spelling of Content-type included. */
export const STATUS_HEADS: Readonly<Record<StatusFormat, string>> = {
  text: `${NO_CACHE}Content-type: text/plain;charset=UTF-8\r\n\r\n`,
  json: `${NO_CACHE}Content-Type: application/json\r\n\r\n`,
  xml: `${NO_CACHE}Content-type: text/xml;charset=UTF-8\r\n\r\n`,
  html: `${NO_CACHE}Content-type: text/html;charset=UTF-8\r\n\r\n`,
  openmetrics: `${NO_CACHE}Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\r\n`
}

/** php sets the ping page's Content-type before the no-cache headers. */
export const PING_HEAD = `Content-type: text/plain;charset=UTF-8\r\n${NO_CACHE}\r\n`
