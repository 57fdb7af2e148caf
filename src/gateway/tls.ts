import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type HyperExpress from 'hyper-express';
import type { Config } from '../config/index.js';
import { exclusiveApp, type ListenApp, type Reservation } from '../server/listen.js';
import { selfSigned } from '../server/certs.js';
import { splice } from './splice.js';

/**
 * tls: the client side's TLS (etcd's --cert-file, --key-file, --trusted-ca-file,
 * --client-cert-auth, --auto-tls).
 *
 * Without --client-cert-auth, uWebSockets terminates TLS itself (hyper-express's SSLApp
 * options): nothing stands between the socket and the gateway.
 *
 * With --client-cert-auth, uWebSockets is not enough: given a CA it refuses a certificate from
 * another CA but lets a client with NO certificate through (uSockets does not set
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT; checked against uWS 20.30), and it does not expose the peer
 * certificate, whose common name etcd takes as the user. So node:tls terminates the client
 * port (requestCert + rejectUnauthorized: no or wrong certificate is refused at the handshake)
 * and relays each connection to the gateway's uWS listener on a loopback port. Each relayed
 * connection leaves from its own loopback address (127.x.y.z: Linux routes all of 127/8 to
 * lo), so the gateway knows the connection's certificate by the request's remote address —
 * and refuses any connection to the inner port that the relay did not make.
 */

/** ClientTls is how one client URL speaks TLS. */
export interface ClientTls {
  certFile: string;
  keyFile: string;
  /** caFile: the CA client certificates must chain to (client-cert-auth only). */
  caFile?: string;
  clientCertAuth: boolean;
}

const resolved = new Map<Config, ClientTls | undefined>();

/** tlsFor is the TLS of one client URL: clientTlsOf for https (resolved once), else none. */
export function tlsFor(cfg: Config, url: URL): ClientTls | undefined {
  if (url.protocol !== 'https:') return undefined;
  if (!resolved.has(cfg)) resolved.set(cfg, clientTlsOf(cfg));
  return resolved.get(cfg);
}

/** clientTlsOf returns the TLS settings of the https client URLs, generating the auto-tls
 * certificate (in <data-dir>/fixtures/client, as etcd) when asked to; undefined without TLS. */
export function clientTlsOf(cfg: Config): ClientTls | undefined {
  if (!cfg.listenClientUrls.some((u) => u.startsWith('https:'))) return undefined;
  let certFile = cfg.certFile;
  let keyFile = cfg.keyFile;
  if (certFile === '' && cfg.autoTls === 'true') {
    const dir = join(cfg.dataDir, 'fixtures', 'client');
    ({ certFile, keyFile } = selfSigned(dir, cfg.listenClientUrls));
  }
  return {
    certFile, keyFile, clientCertAuth: cfg.clientCertAuth === 'true',
    ...(cfg.trustedCaFile === '' ? {} : { caFile: cfg.trustedCaFile }),
  };
}

/** uwsTlsOptions are hyper-express's SSLApp options for TLS without client certificates. */
export function uwsTlsOptions(t: ClientTls | undefined): Record<string, string> {
  if (t === undefined || t.clientCertAuth) return {};
  return { key_file_name: t.keyFile, cert_file_name: t.certFile };
}

/** CertRelay is the TLS front of a client port with client-cert-auth (see the file comment). */
export class CertRelay {
  /** users: the certificate common name of each relayed connection, by its loopback address. */
  private readonly users = new Map<string, string>();
  private server?: tls.Server;
  private readonly sockets = new Set<net.Socket>();
  private nextAddress = 0;

  constructor(private readonly t: ClientTls, private readonly innerPort: number) {}

  /** listen binds the client port exclusively (host, port; 0 picks one) and returns it. */
  async listen(host: string, port: number): Promise<number> {
    const ctx = {
      key: readFileSync(this.t.keyFile), cert: readFileSync(this.t.certFile),
      ca: readFileSync(this.t.caFile!), requestCert: true, rejectUnauthorized: true,
    };
    const server = tls.createServer(ctx, (sock) => this.relay(sock));
    server.on('tlsClientError', () => undefined); // refused at the handshake: nothing to do
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    return (server.address() as net.AddressInfo).port;
  }

  /** relayed reports whether a request's remote address is one of the relay's connections. */
  relayed(ip: string): boolean {
    return this.users.has(ip);
  }

  /** userOf is the common name of the certificate behind a relayed connection. */
  userOf(ip: string): string | undefined {
    const u = this.users.get(ip);
    return u === '' ? undefined : u;
  }

  /** close stops listening and ends every relayed connection. */
  close(): void {
    this.server?.close();
    for (const s of this.sockets) s.destroy();
  }

  private relay(sock: tls.TLSSocket): void {
    const cn = sock.getPeerCertificate().subject?.CN;
    const ip = this.address();
    this.users.set(ip, typeof cn === 'string' ? cn : '');
    const up = net.connect({ host: '127.0.0.1', port: this.innerPort, localAddress: ip });
    splice(sock, up, this.sockets, () => this.users.delete(ip));
  }

  /** address picks a loopback address no live relayed connection uses (127.1.0.0 onward). */
  private address(): string {
    for (;;) {
      const n = this.nextAddress;
      this.nextAddress = (n + 1) % (254 * 65536);
      const ip = `127.${1 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`;
      if (n % 256 !== 0 && n % 256 !== 255 && !this.users.has(ip)) return ip;
    }
  }
}

/** guardInner lets only the relay's connections through to the gateway's inner listener;
 * returns the setter for the relay, which exists once listenRelayed has run. */
export function guardInner(server: HyperExpress.Server): (r: CertRelay) => void {
  let relay: CertRelay | undefined;
  server.use((req, res, next) => {
    if (relay?.relayed(req.ip) === true) next();
    else res.status(403).type('text').send('client certificate required\n');
  });
  return (r) => {
    relay = r;
  };
}

/** listenRelayed starts the gateway on a loopback port and the TLS relay on the client port
 * (the reservation's, handed over); closing the server closes the relay. */
export async function listenRelayed(server: HyperExpress.Server, t: ClientTls, host: string,
  port: number, reservation: Reservation | undefined, setRelay: (r: CertRelay) => void):
  Promise<{ relay: CertRelay; port: number }> {
  exclusiveApp(server.uws_instance as unknown as ListenApp);
  await server.listen(0, '127.0.0.1');
  const relay = new CertRelay(t, server.port);
  setRelay(relay);
  reservation?.release();
  const bound = await relay.listen(reservation?.host ?? host, reservation?.port ?? port);
  const close = server.close.bind(server);
  server.close = (...a: Parameters<typeof close>) => {
    relay.close();
    return close(...a);
  };
  return { relay, port: bound };
}
