import { dashboardHtml } from './dashboard-page.js';
import { memberOf } from './dashboard.js';
import { errorBody } from './errors.js';
import type { Routes } from './routes.js';

/**
 * dashboard-routes: `GET /dashboard`, one static page (HTML and plain browser JavaScript, no
 * build step, no framework: src/gateway/dashboard-page.ts), and the JSON it polls about once a
 * second, `GET /debug/dashboard` (src/gateway/dashboard.ts). `GET /debug/member` is one
 * member's status line, which the dashboard of another member of the cluster asks for.
 */

/** registerDashboardRoutes serves the page and its JSON (the latter when deps.dashboard is
 * set: main.ts sets it). */
export function registerDashboardRoutes(r: Routes): void {
  r.server.get('/dashboard', (_req, res) => {
    res.header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache').send(dashboardHtml);
  });
  r.server.get('/debug/dashboard', async (_req, res) => {
    const dash = r.deps.dashboard;
    try {
      const refused = r.refusal();
      if (refused !== undefined) {
        res.status(refused.status).header('content-type', 'application/json').send(refused.body);
        return;
      }
      if (dash === undefined) throw new Error('the dashboard is not wired in this server');
      res.header('content-type', 'application/json').send(JSON.stringify(await dash.snapshot()));
    } catch (e) {
      const eb = errorBody(e);
      if (!res.completed) {
        res.status(eb.status).header('content-type', 'application/json').send(eb.body);
      }
    }
  });
  r.server.get('/debug/member', async (_req, res) => {
    try {
      const st = await r.deps.kv.status();
      const line = memberOf(st, r.deps.dashboard?.name ?? '', r.deps.system.serving);
      res.header('content-type', 'application/json').send(JSON.stringify(line));
    } catch (e) {
      const eb = errorBody(e);
      if (!res.completed) {
        res.status(eb.status).header('content-type', 'application/json').send(eb.body);
      }
    }
  });
}
