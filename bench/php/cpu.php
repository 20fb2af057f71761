<?php
// Bench: CPU-bound request, about 2 ms of PHP 8.2 (opcache on, no JIT) on the
// bench machine. Deterministic integer arithmetic; every intermediate value
// stays below 2^53, so the node-fpm equivalent computes the same number:
//
//   let h = 0
//   for (let i = 0; i < 260000; i++) h = (h * 31 + i) % 1000000007
//   String(h)
$h = 0;
for ($i = 0; $i < 260000; $i++) {
  $h = ($h * 31 + $i) % 1000000007;
}
header('Content-Type: text/plain');
echo $h;
