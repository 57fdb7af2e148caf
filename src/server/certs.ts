import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { StartupError } from './errors.js';

/**
 * certs: the self-signed certificates of --auto-tls and --peer-auto-tls, made with Debian's
 * /usr/bin/openssl at start (Node cannot write X.509 certificates itself), in etcd's folders
 * <data-dir>/fixtures/client and <data-dir>/fixtures/peer.
 */

/** selfSigned writes a self-signed EC certificate for the URLs' hosts (openssl, once). */
export function selfSigned(dir: string, urls: string[], setting = 'auto-tls'):
  { certFile: string; keyFile: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const hosts = new Set(['DNS:localhost', 'IP:127.0.0.1']);
  for (const u of urls) {
    const h = new URL(u).hostname.replace(/^\[(.*)\]$/, '$1');
    hosts.add(net.isIP(h) ? `IP:${h}` : `DNS:${h}`);
  }
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
      'ec_paramgen_curve:prime256v1', '-nodes', '-days', '365', '-subj', '/CN=myetcd',
      '-addext', `subjectAltName=${[...hosts].join(',')}`, '-keyout', keyFile,
      '-out', certFile], { stdio: 'pipe' });
  } catch (e) {
    throw new StartupError(setting, dir, `cannot generate a certificate with openssl: ${
      (e as Error).message}`);
  }
  return { certFile, keyFile };
}

