#!/usr/bin/env node
// The installed `node-fpm` command. The sources are TypeScript that Node >= 22.18 / 24 runs by
// type stripping; npm scripts run on the pinned Node 24 (the node@24 devDependency).
import '../src/cli/main.ts'
