#!/usr/bin/env node
// myetcdctl: the command-line client (compiled from src/cli/main.ts by `npm run build`).
import { main } from '../dist/src/cli/main.js';

await main();
