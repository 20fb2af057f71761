// A TypeScript handler (Node 24 strips the types): shows what a handler receives.
interface Ctx { waitUntil (p: Promise<unknown>): void }

export default async function (request: Request, env: Record<string, string>, _ctx: Ctx): Promise<Response> {
  const body = request.method === 'POST' ? await request.text() : null
  return Response.json({
    method: request.method,
    url: request.url,
    headers: Object.fromEntries(request.headers),
    body,
    scriptFilename: env.SCRIPT_FILENAME ?? null,
    thread: (await import('node:worker_threads')).threadId
  })
}
