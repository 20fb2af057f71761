// Small helpers for the figures of the bench scripts (bench/run.ts, bench/nginx.ts, bench/startup.ts, bench/threads-cpu.ts).

export function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** The value below which `p` percent of `xs` fall (nearest rank); 0 for none. */
export function percentile (xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p / 100 * s.length) - 1))]!
}

export function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Left-aligned columns by name, the others right-aligned; two spaces between columns. */
export function formatTable (head: readonly string[], rows: readonly string[][], leftColumns: readonly string[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] ?? '').length)))
  const left = new Set(leftColumns)
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => left.has(head[i]!) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
