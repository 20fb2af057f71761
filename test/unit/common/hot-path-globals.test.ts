// The request path takes Buffer and performance from node:buffer and node:perf_hooks. On
// globalThis both are getters: each use from optimized code calls one through V8's global load
// (LoadGlobalIC), where a module binding is a plain load. Measured with bench/instructions.ts
// (hello, pm.accept = threads): 54,644 -> 53,350 instructions per request on the request thread.
// A new use of either global in these folders brings that call back: this test names the file.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const SRC = join(import.meta.dirname, '..', '..', '..', 'src')
/**
 * What runs per request: the server (on a pm.accept = threads thread too), the codec, the thread's code,
 * the logs; and the load generator's (bench, client), which shares the CPUs with the server it measures.
 */
const HOT_DIRS = ['server', 'fastcgi', 'worker', 'common', 'log', 'bench', 'client']
const HOT_FILES = ['pool/script-resolver.ts']

const GLOBALS: ReadonlyArray<{ name: string, module: string }> = [
  { name: 'Buffer', module: 'node:buffer' },
  { name: 'performance', module: 'node:perf_hooks' }
]

function hotFiles (): string[] {
  const files = HOT_FILES.map((f) => join(SRC, f))
  for (const dir of HOT_DIRS) {
    for (const f of readdirSync(join(SRC, dir))) if (f.endsWith('.ts')) files.push(join(SRC, dir, f))
  }
  return files
}

/** The code without comments (a comment may name performance.now()). */
function code (file: string): string {
  return readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

describe('request path globals', () => {
  it('every file of the request path that uses Buffer or performance imports it', () => {
    const files = hotFiles()
    assert.ok(files.length > 30, `found only ${files.length} files under ${SRC}`)
    const missing: string[] = []
    for (const file of files) {
      const text = code(file)
      for (const g of GLOBALS) {
        const used = new RegExp(`(^|[^.\\w])${g.name}\\.\\w`).test(text)
        const imported = new RegExp(`import \\{[^}]*\\b${g.name}\\b[^}]*\\} from '${g.module}'`).test(text)
        if (used && !imported) missing.push(`${file.slice(SRC.length + 1)}: ${g.name} (import it from '${g.module}')`)
      }
    }
    assert.deepEqual(missing, [])
  })
})
