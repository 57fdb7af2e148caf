import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, type TestServer } from './helpers/server.js';

/**
 * The client SDK as a package: a program outside this repository finds it by name, as an
 * application that installed it would (`node_modules/myetcd`, here a symlink to this package's
 * folder, so the check works offline). Its `exports` must resolve `myetcd` and
 * `myetcd/client` at run time, and its `types` must type-check a TypeScript program.
 */

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

let server: TestServer;
let dir: string;

test.before(async () => {
  server = await startServer();
  dir = await mkdtemp(join(tmpdir(), 'myetcd-pkg-'));
  await mkdir(join(dir, 'node_modules'));
  await symlink(root, join(dir, 'node_modules', 'myetcd'), 'dir');
  await writeFile(join(dir, 'package.json'), '{ "name": "app", "type": "module" }\n');
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
    }),
  );
});

test.after.always(async () => {
  await server?.stop();
  await server?.cleanup();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test('client package: `myetcd` and `myetcd/client` resolve by name and work', async (t) => {
  await writeFile(
    join(dir, 'app.mjs'),
    `import { Client, Compare, Op, ClientError } from 'myetcd';
import * as sub from 'myetcd/client';
const client = new Client({ endpoints: [process.env.ENDPOINT] });
await client.put('pkg/greeting', 'hello');
const r = await client.txn().if(Compare.value('pkg/greeting', '=', 'hello'))
  .then(Op.get('pkg/greeting')).commit();
console.log(JSON.stringify({
  same: sub.Client === Client,
  errorClass: typeof ClientError,
  value: r.responses[0].range.kvs[0].value.toString(),
}));
`,
  );
  const { stdout } = await run(process.execPath, ['app.mjs'], {
    cwd: dir,
    env: { ...process.env, ENDPOINT: server.url },
  });
  t.deepEqual(JSON.parse(stdout), { same: true, errorClass: 'function', value: 'hello' });
});

test('client package: its declarations type-check a program, not a wrong one', async (t) => {
  await writeFile(
    join(dir, 'good.ts'),
    `import { Client, type RangeResult, type ClientOptions } from 'myetcd';
import { Compare } from 'myetcd/client';
const opts: ClientOptions = { endpoints: ['http://127.0.0.1:2379'], requestTimeoutMs: 1000 };
const client = new Client(opts);
export async function count(): Promise<number> {
  const r: RangeResult = await client.get('a', { prefix: true, countOnly: true });
  const cmp = Compare.version('a', '>', 0);
  void cmp;
  return r.count;
}
`,
  );
  await run(process.execPath, [tsc, '-p', '.'], { cwd: dir });
  await writeFile(
    join(dir, 'bad.ts'),
    `import { Client } from 'myetcd';
const n: string = (await new Client({ endpoints: [] }).get('a')).count;
`,
  );
  const e = await t.throwsAsync(run(process.execPath, [tsc, '-p', '.'], { cwd: dir }));
  t.regex(String((e as unknown as { stdout: string }).stdout), /bad\.ts.*TS2322/);
  await rm(join(dir, 'bad.ts'));
});
