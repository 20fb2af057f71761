<?php
// Bench: minimal response. Body: "Hello, World!" (13 bytes, no newline).
echo 'Hello, World!';
