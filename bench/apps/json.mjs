// Bench handler: the node-fpm twin of bench/php/json.php, a small JSON API page (1,5xx bytes).
// Same structure, same bytes: PHP's json_encode and JSON.stringify agree on integers, booleans and
// ASCII strings without '/'. Built on every request, as the PHP script does.
export default {
  fetch () {
    const items = []
    for (let i = 1; i <= 17; i++) {
      items.push({ id: i, name: `item-${i}`, price: i * 250 + 99, qty: (i * 7) % 13, active: i % 3 !== 0, tags: ['tag' + (i % 4), 'group' + (i % 5)] })
    }
    return new Response(JSON.stringify({ status: 'ok', page: 1, total: 17, items }), {
      headers: { 'content-type': 'application/json' }
    })
  }
}
