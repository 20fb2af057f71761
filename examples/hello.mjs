// The smallest handler: GET /hello.mjs through the default pool.
export default {
  fetch (request) {
    return new Response(`Hello from node-fpm! You asked for ${new URL(request.url).pathname}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' }
    })
  }
}
