// Bench handler: the node-fpm twin of bench/php/cpu.php, a CPU-bound request (about 2 ms of PHP
// 8.2 with opcache, no JIT). The same integer arithmetic: every intermediate value stays below
// 2^53, so the body is the same number.
export default {
  fetch () {
    let h = 0
    for (let i = 0; i < 260000; i++) h = (h * 31 + i) % 1000000007
    return new Response(String(h), { headers: { 'content-type': 'text/plain' } })
  }
}
