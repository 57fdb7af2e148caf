import type { Routes } from './server.js';

/** registerV1Routes: the seed's REST API (docs/api.md). */
export function registerV1Routes(r: Routes): void {
  void r;
}
