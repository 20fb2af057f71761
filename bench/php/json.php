<?php
// Bench: small JSON API page (about 1.5 KB). Deterministic: the node-fpm equivalent
// builds the same structure and JSON.stringify gives the same bytes (only
// integers, booleans and ASCII strings without '/', so PHP's json_encode and
// JavaScript's JSON.stringify agree):
//
//   const items = []
//   for (let i = 1; i <= 17; i++) {
//     items.push({ id: i, name: `item-${i}`, price: i * 250 + 99, qty: (i * 7) % 13, active: i % 3 !== 0, tags: ['tag' + (i % 4), 'group' + (i % 5)] })
//   }
//   JSON.stringify({ status: 'ok', page: 1, total: 17, items })
$items = [];
for ($i = 1; $i <= 17; $i++) {
  $items[] = [
    'id' => $i,
    'name' => 'item-' . $i,
    'price' => $i * 250 + 99,
    'qty' => ($i * 7) % 13,
    'active' => $i % 3 !== 0,
    'tags' => ['tag' . ($i % 4), 'group' . ($i % 5)],
  ];
}
header('Content-Type: application/json');
echo json_encode(['status' => 'ok', 'page' => 1, 'total' => 17, 'items' => $items], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
