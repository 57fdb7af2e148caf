/**
 * StartupError is any reason the server refuses to start after its configuration was read:
 * a data directory that is a file or is locked by another member, a busy client URL, a log
 * file that cannot be opened. `setting` is the flag at fault (e.g. "data-dir"), `target` the
 * path or URL it named; the message names both, so that main prints it as one line
 * (`myetcd: <message>`) and exits non-zero, having created nothing.
 */
export class StartupError extends Error {
  readonly code = 'ESTARTUP';
  readonly setting: string;
  readonly target: string;
  constructor(setting: string, target: string, why: string) {
    super(`--${setting} ${target}: ${why}`);
    this.name = 'StartupError';
    this.setting = setting;
    this.target = target;
  }
}

/** errnoText turns a Node system error into a short reason: "permission denied (EACCES)". */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a path component is not a directory',
    EISDIR: 'is a directory',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EEXIST: 'already exists',
    EADDRINUSE: 'address already in use',
    EADDRNOTAVAIL: 'address not available on this host',
    ENOTFOUND: 'host name not found',
    EAI_AGAIN: 'host name lookup failed',
  };
  if (typeof err?.code === 'string') return `${known[err.code] ?? err.message} (${err.code})`;
  return e instanceof Error ? e.message : String(e);
}
