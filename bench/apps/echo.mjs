// Bench handler: the node-fpm twin of bench/php/echo.php. Reads the whole request body, then sends
// it back unchanged (as file_get_contents('php://input') + echo does).
export default {
  async fetch (request) {
    const body = await request.arrayBuffer()
    return new Response(body, { headers: { 'content-type': 'application/octet-stream' } })
  }
}
