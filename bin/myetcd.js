#!/usr/bin/env node
// myetcd: start one member (the same as `npm start -- <flags>`); see `myetcd --help`.
import "../dist/src/main.js";
