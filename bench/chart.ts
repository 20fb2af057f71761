// The SVG chart of a bench run (bench/run.ts): hand-written SVG, no dependency.
//
// One panel per scenario and metric: throughput (req/s) on top, p99 latency (ms) below, each with
// its own linear scale, ticks and grid. In a panel, one group of bars per configuration (workers,
// connections, keep-conn), one bar per server (node-fpm beside php-fpm), the value above each bar
// and the node-fpm/php-fpm ratio under the group. Panels wrap into bands so the chart stays about
// MAX_WIDTH wide; a browser shows it as is (it is plain SVG 1.1 with a white background).
//
// bench/run.ts writes one beside each results file. To draw it again from a results file:
//
//   node bench/chart.ts bench/results/<timestamp>.json [out.svg]

export interface ChartBar {
  server: string
  rps: number
  p99: number
  /** Fewest connections served in a round, and the connections of the run. */
  served: number
  connections: number
}

export interface ChartGroup {
  scenario: string
  /** Short label lines under the group, e.g. ['c16', 'keep']. */
  label: string[]
  bars: ChartBar[]
}

export interface ChartInput {
  title: string
  subtitle: string
  /** Scenarios in order, with their panel titles. */
  scenarios: { name: string, title: string }[]
  /** Servers in bar order (the first is the numerator of the ratios). */
  servers: string[]
  groups: ChartGroup[]
}

const COLORS: Record<string, string> = { 'node-fpm': '#3c873a', 'php-fpm': '#777bb4' }
const FALLBACK_COLORS = ['#e07b39', '#3b7dd8', '#c94f7c']
const MAX_WIDTH = 1400
const BAR_W = 18
const GROUP_GAP = 16
const PLOT_H = 170
const PANEL_TOP = 56 // panel title + room for the value labels above the tallest bar
const PANEL_BOTTOM = 52 // two lines of group label and the ratio (more lines add to it)
const PANEL_LEFT = 48 // y tick labels
const PANEL_RIGHT = 10
const PANEL_GAP = 18
const ROW_LABEL_W = 26
const FONT = 'font-family="Helvetica, Arial, sans-serif"'

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Compact number: 18.1k, 5.61k, 151, 10.4, 1.03, 0.065. */
export function compact (x: number): string {
  if (!Number.isFinite(x)) return '?'
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`
  if (x >= 1e3) return `${(x / 1e3).toFixed(2)}k`
  if (x >= 100) return x.toFixed(0)
  if (x === 0) return '0'
  return String(Number(x.toPrecision(3)))
}

/** A tick step of 1, 2, 2.5 or 5 times a power of ten giving about `count` ticks up to max. */
function niceStep (max: number, count: number): number {
  const raw = max / count
  const pow = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow
  return 10 * pow
}

function tickLabel (v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`
  return String(Number(v.toPrecision(3)))
}

/** The parts of a bench/run.ts results file the chart reads. */
export interface BenchResultsLike {
  options: { workers: number[], rounds: number, duration: number, vs: string }
  env: { node: string, cpus: number, commit: string | null }
  scenarios: { name: string, title: string }[]
  summary: Array<{
    workers: number
    scenario: string
    connections: number
    keepConn: boolean
    servers: Array<{ server: string, rps: number, p99: number, connectionsServed: number, connections: number }>
  }>
}

/** The chart of a bench/run.ts results file. */
export function renderResultsChart (r: BenchResultsLike): string {
  const servers = r.options.vs === 'php-fpm' ? ['node-fpm', 'php-fpm'] : ['node-fpm']
  const multiWorkers = r.options.workers.length > 1
  return renderChart({
    title: servers.length > 1 ? 'node-fpm vs php-fpm' : 'node-fpm',
    subtitle: `${r.options.workers.join(',')} workers each (pm = static), unix sockets; c = connections, keep = FCGI_KEEP_CONN, ` +
      `new = a connection per request; medians of ${r.options.rounds} x ${r.options.duration} s; Node ${r.env.node}, ${r.env.cpus} CPUs` +
      (r.env.commit !== null ? `, commit ${r.env.commit.slice(0, 10)}` : ''),
    scenarios: r.scenarios,
    servers,
    groups: r.summary.map(c => ({
      scenario: c.scenario,
      label: [...(multiWorkers ? [`w${c.workers}`] : []), `c${c.connections}`, c.keepConn ? 'keep' : 'new'],
      bars: c.servers.map(s => ({ server: s.server, rps: s.rps, p99: s.p99, served: s.connectionsServed, connections: s.connections }))
    }))
  })
}

type Metric = 'rps' | 'p99'

/** Splits text into lines of at most `max` chars, at spaces. */
function wrap (text: string, max: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > max) { lines.push(line); line = word } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') lines.push(line)
  return lines
}

export function renderChart (input: ChartInput): string {
  const servers = input.servers
  const color = (s: string, i: number): string => COLORS[s] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length]!
  const groupsOf = (scenario: string): ChartGroup[] => input.groups.filter(g => g.scenario === scenario)
  const scenarios = input.scenarios.filter(s => groupsOf(s.name).length > 0)
  const groupW = servers.length * BAR_W + GROUP_GAP
  const panelW = (s: string): number => Math.max(150, PANEL_LEFT + groupsOf(s).length * groupW + PANEL_RIGHT)
  const labelLines = Math.max(1, ...input.groups.map(g => g.label.length))
  const panelH = PANEL_TOP + PLOT_H + PANEL_BOTTOM + (labelLines - 2) * 12

  // Bands of scenarios, each as wide as fits.
  const bands: { name: string, title: string }[][] = []
  let band: { name: string, title: string }[] = []
  let bandW = ROW_LABEL_W
  for (const s of scenarios) {
    const w = panelW(s.name) + PANEL_GAP
    if (band.length > 0 && bandW + w > MAX_WIDTH) { bands.push(band); band = []; bandW = ROW_LABEL_W }
    band.push(s)
    bandW += w
  }
  if (band.length > 0) bands.push(band)
  const width = Math.max(640, ...bands.map(b => ROW_LABEL_W + b.reduce((w, s) => w + panelW(s.name) + PANEL_GAP, 0))) + 12
  const subtitle = wrap(input.subtitle, Math.floor((width - 32) / 6.3))
  const headerH = 58 + subtitle.length * 16
  const notes: string[] = []
  const anyStarved = input.groups.some(g => g.bars.some(b => b.served < b.connections))
  if (anyStarved) notes.push('* served fewer connections than it was given (php-fpm ties a kept connection to one worker: see bench/README.md)')
  if (servers.length > 1) notes.push(`ratio under each group: ${servers[0]} / ${servers[1]} (req/s: above 1 is faster; p99: below 1 is faster)`)
  const footnotes = notes.flatMap(n => wrap(n, Math.floor((width - 32) / 5.8)))
  const height = headerH + bands.length * 2 * (panelH + 10) + footnotes.length * 15 + 16

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="26" font-size="17" font-weight="bold" fill="#222">${esc(input.title)}</text>`)
  subtitle.forEach((line, i) => {
    out.push(`<text x="16" y="${46 + i * 16}" font-size="12" fill="#555">${esc(line)}</text>`)
  })
  // legend
  const legendY = 40 + subtitle.length * 16
  let lx = 16
  servers.forEach((s, i) => {
    out.push(`<rect x="${lx}" y="${legendY}" width="12" height="12" fill="${color(s, i)}"/>`)
    out.push(`<text x="${lx + 17}" y="${legendY + 10.5}" font-size="12" fill="#222">${esc(s)}</text>`)
    lx += 30 + s.length * 7.5
  })

  let y = headerH
  for (const b of bands) {
    for (const metric of ['rps', 'p99'] as Metric[]) {
      const rowLabel = metric === 'rps' ? 'throughput, req/s (higher is better)' : 'p99 latency, ms (lower is better)'
      const cy = y + PANEL_TOP + PLOT_H / 2
      out.push(`<text transform="translate(${ROW_LABEL_W - 8},${cy}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">${esc(rowLabel)}</text>`)
      let x = ROW_LABEL_W
      for (const s of b) {
        out.push(panel(x, y, panelW(s.name), s.title, groupsOf(s.name), metric, servers, color))
        x += panelW(s.name) + PANEL_GAP
      }
      y += panelH + 10
    }
  }
  footnotes.forEach((f, i) => {
    out.push(`<text x="16" y="${y + 4 + i * 15}" font-size="11" fill="#555">${esc(f)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

function panel (x0: number, y0: number, w: number, title: string, groups: ChartGroup[], metric: Metric, servers: string[],
  color: (s: string, i: number) => string): string {
  const out: string[] = []
  const values = groups.flatMap(g => g.bars.map(b => b[metric]))
  const max = Math.max(...values, 0)
  const step = max > 0 ? niceStep(max, 4) : 1
  const top = max > 0 ? Math.ceil(max / step) * step : 1
  const plotX = x0 + PANEL_LEFT
  const plotW = w - PANEL_LEFT - PANEL_RIGHT
  const plotY = y0 + PANEL_TOP
  const yOf = (v: number): number => plotY + PLOT_H - (v / top) * PLOT_H
  out.push(`<text x="${x0 + w / 2}" y="${y0 + 16}" text-anchor="middle" font-size="13" font-weight="bold" fill="#222">${esc(title)}</text>`)
  // grid and y ticks
  for (let v = 0; v <= top + step / 1e6; v += step) {
    const ty = yOf(v)
    out.push(`<line x1="${plotX}" y1="${ty.toFixed(1)}" x2="${plotX + plotW}" y2="${ty.toFixed(1)}" stroke="${v === 0 ? '#888' : '#e4e4e4'}" stroke-width="1"/>`)
    out.push(`<text x="${plotX - 5}" y="${(ty + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#555">${tickLabel(v)}</text>`)
  }
  out.push(`<line x1="${plotX}" y1="${plotY}" x2="${plotX}" y2="${plotY + PLOT_H}" stroke="#888" stroke-width="1"/>`)
  const groupW = servers.length * BAR_W + GROUP_GAP
  const span = groups.length * groupW
  let gx = plotX + Math.max(0, (plotW - span) / 2) + GROUP_GAP / 2
  for (const g of groups) {
    servers.forEach((s, i) => {
      const bar = g.bars.find(b => b.server === s)
      if (bar === undefined) return
      const v = bar[metric]
      const bx = gx + i * BAR_W
      const by = yOf(v)
      const h = plotY + PLOT_H - by
      out.push(`<rect x="${bx + 1}" y="${by.toFixed(1)}" width="${BAR_W - 2}" height="${Math.max(0, h).toFixed(1)}" fill="${color(s, i)}">` +
        `<title>${esc(`${s} ${g.label.join(' ')}: ${metric === 'rps' ? `${v} req/s` : `p99 ${v} ms`}, ${bar.served}/${bar.connections} connections served`)}</title></rect>`)
      const mark = bar.served < bar.connections ? '*' : ''
      const lx = bx + BAR_W / 2 + 3.5
      const ly = by - 3
      out.push(`<text transform="translate(${lx.toFixed(1)},${ly.toFixed(1)}) rotate(-90)" font-size="10" fill="#333">${esc(compact(v) + mark)}</text>`)
    })
    const cx = gx + (servers.length * BAR_W) / 2
    g.label.forEach((line, i) => {
      out.push(`<text x="${cx.toFixed(1)}" y="${plotY + PLOT_H + 14 + i * 12}" text-anchor="middle" font-size="10" fill="#333">${esc(line)}</text>`)
    })
    if (servers.length > 1) {
      const a = g.bars.find(b => b.server === servers[0])?.[metric]
      const b = g.bars.find(b => b.server === servers[1])?.[metric]
      if (a !== undefined && b !== undefined && b > 0) {
        out.push(`<text x="${cx.toFixed(1)}" y="${plotY + PLOT_H + 16 + g.label.length * 12}" text-anchor="middle" font-size="10" font-weight="bold" fill="#222">${(a / b).toFixed(2)}×</text>`)
      }
    }
    gx += groupW
  }
  return out.join('\n')
}

if (import.meta.main) {
  const [input, output] = process.argv.slice(2)
  if (input === undefined) {
    process.stderr.write('usage: node bench/chart.ts RESULTS.json [OUT.svg]   (default: RESULTS.svg)\n')
    process.exitCode = 64
  } else {
    const { readFileSync, writeFileSync } = await import('node:fs')
    const out = output ?? input.replace(/\.json$/, '') + '.svg'
    writeFileSync(out, renderResultsChart(JSON.parse(readFileSync(input, 'utf8')) as BenchResultsLike))
    process.stdout.write(out + '\n')
  }
}
