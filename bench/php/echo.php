<?php
// Bench: request body round trip. Answers the raw request body unchanged.
header('Content-Type: application/octet-stream');
echo file_get_contents('php://input');
