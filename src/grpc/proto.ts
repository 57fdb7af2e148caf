import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

/**
 * proto: etcd 3.4's gRPC services, loaded from the .proto files vendored in proto/ (etcd's
 * etcdserverpb/rpc.proto, mvccpb/kv.proto, authpb/auth.proto and grpc.health.v1, stripped of
 * their Go-only annotations; each file names its source and licence). The loader's options
 * fix the shapes src/grpc/codec.ts reads and writes: proto field names, 64-bit integers as
 * decimal strings (never rounded), enums as numbers, bytes as Buffers, absent fields
 * undefined, a oneof's chosen member named in the oneof's own field.
 */

/** protoDir is the vendored proto/ folder (dist/src/grpc → the package root). */
export const protoDir = new URL('../../../proto/', import.meta.url).pathname;

/** loaderOptions are the shapes codec.ts relies on (see the file comment). */
export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [protoDir],
};

/** EtcdServices are the service definitions a server registers and a client dials. */
export interface EtcdServices {
  KV: grpc.ServiceDefinition;
  Watch: grpc.ServiceDefinition;
  Lease: grpc.ServiceDefinition;
  Cluster: grpc.ServiceDefinition;
  Maintenance: grpc.ServiceDefinition;
  Auth: grpc.ServiceDefinition;
  Health: grpc.ServiceDefinition;
  /** clients: client constructors by service name (tests, bench). */
  clients: Record<string, grpc.ServiceClientConstructor>;
}

let loaded: EtcdServices | undefined;

/** loadEtcdServices parses the vendored protos once per process. */
export function loadEtcdServices(): EtcdServices {
  if (loaded !== undefined) return loaded;
  const def = protoLoader.loadSync(['etcdserverpb/rpc.proto', 'grpc-health/health.proto'],
    loaderOptions);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    etcdserverpb: Record<string, grpc.ServiceClientConstructor>;
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const e = pkg.etcdserverpb;
  const svc = (c: grpc.ServiceClientConstructor) => c.service;
  loaded = {
    KV: svc(e['KV']!), Watch: svc(e['Watch']!), Lease: svc(e['Lease']!),
    Cluster: svc(e['Cluster']!), Maintenance: svc(e['Maintenance']!), Auth: svc(e['Auth']!),
    Health: svc(pkg.grpc.health.v1.Health),
    clients: { ...e, Health: pkg.grpc.health.v1.Health },
  };
  return loaded;
}
