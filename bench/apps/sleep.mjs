// Bench handler: the node-fpm twin of bench/php/sleep.php. Waits 10 ms (a timer, as an I/O wait
// would), then answers "Hello, World!".
import { setTimeout as sleep } from 'node:timers/promises'

export default {
  async fetch () {
    await sleep(10)
    return new Response('Hello, World!')
  }
}
