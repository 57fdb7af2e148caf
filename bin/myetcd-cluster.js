#!/usr/bin/env node
// myetcd-cluster: a local cluster of real members with prefixed logs (`npm run cluster`);
// see src/cluster/local.ts for the flags.
import { runLocal } from "../dist/src/cluster/local.js";

runLocal(process.argv.slice(2));
