<?php
// Bench: large response. Body: exactly 65536 bytes, the 64-byte line
// "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n"
// repeated 1024 times.
header('Content-Type: text/plain');
echo str_repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n", 1024);
