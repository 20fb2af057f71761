// Bench handler: the node-fpm twin of bench/php/big.php. Body: exactly 65536 bytes, the 64-byte
// line "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n" repeated 1024 times,
// built on every request (as PHP's str_repeat is).
export default {
  fetch () {
    return new Response('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n'.repeat(1024), {
      headers: { 'content-type': 'text/plain' }
    })
  }
}
