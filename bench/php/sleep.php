<?php
// Bench: I/O-bound request. Sleeps 10 ms, then answers "Hello, World!".
usleep(10000);
echo 'Hello, World!';
