// Bench handler: the node-fpm twin of bench/php/hello.php. Body: "Hello, World!" (13 bytes, no newline).
export default {
  fetch () {
    return new Response('Hello, World!')
  }
}
