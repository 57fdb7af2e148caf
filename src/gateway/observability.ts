import type { WalMsg, WalReplies } from '../../actors/wal/messages.js';
import { type Config, otlpEndpointOf, traceSampleRateOf } from '../config/index.js';
import type { Metrics } from '../metrics/index.js';
import type { ActorSystem } from '../runtime/system.js';
import { Dashboard } from './dashboard.js';
import type { KvService } from './kv-service.js';
import type { OtlpExport, OtlpLogger } from './otlp.js';
import type { GatewayDeps } from './routes.js';

/**
 * observability: wires tracing and the dashboard into a member (main.ts calls it once): the
 * dashboard's sources (the WAL's samples, taken once and shared with /metrics; every answered
 * request), the sampling rate, and the OTLP export when --otlp-endpoint is set.
 */

/** Observability is what main.ts gets: deps for every gateway, and stop (flush the export). */
export interface Observability {
  gatewayDeps: Required<Pick<GatewayDeps, 'observe' | 'traceSampleRate' | 'dashboard'>>;
  stop(): Promise<void>;
}

/** setupObservability: see the file comment. */
export function setupObservability(o: {
  system: ActorSystem; kv: KvService; metrics: Metrics; config: Config; memberId: number;
  logger: { child(b: object): OtlpLogger };
}): Observability {
  const wal = o.system.gateway.ref<WalMsg, WalReplies>('wal');
  const pullWal = async (): Promise<void> => {
    const w = await wal.ask({ type: 'WalStats' }, 2_000);
    o.metrics.ingestWalStats(w);
    dashboard.ingestWal(w);
  };
  const dashboard = new Dashboard(o.system, o.kv, pullWal, o.config.name);
  o.metrics.onScrape(pullWal);
  const url = otlpEndpointOf(o.config.otlpEndpoint);
  // The exporter and the OpenTelemetry SDK (≈ 120 ms of module loading on every start here,
  // docs/performance.md session 22) load only when an endpoint is set, beside the start. No
  // span is lost meanwhile: the export reads each thread's spans from a cursor.
  const otlp: Promise<OtlpExport | undefined> = url === '' ? Promise.resolve(undefined)
    : import('./otlp.js').then(({ OtlpExport: Export }) => {
      const x = new Export(o.system, url, o.memberId.toString(16),
        o.logger.child({ component: 'otlp' }));
      x.start();
      return x;
    }, (e: unknown) => {
      o.logger.child({ component: 'otlp' }).warn({ err: String(e) },
        'the OTLP exporter could not be loaded; spans are not exported');
      return undefined;
    });
  return {
    gatewayDeps: {
      observe: (route, method, code, seconds) => {
        o.metrics.observeHttp(route, method, code, seconds);
        dashboard.observe(route, method, seconds);
      },
      traceSampleRate: traceSampleRateOf(o.config.traceSampleRate),
      dashboard,
    },
    stop: async () => {
      await otlp.then((x) => x?.stop()).catch(() => undefined);
    },
  };
}
