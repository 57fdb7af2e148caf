import { EtcdError } from '../errors.js';

/**
 * ConfigError is thrown by loadConfig for any setting it cannot accept. `setting` is the
 * flag name without dashes (e.g. "heartbeat-interval"), or "" when no single setting is at
 * fault; the message always names the setting and says what is wrong with it, so that main
 * can print it as is and exit with status 2 (etcd exits 1; we keep 2 for usage errors).
 * Its code is CONFIG_INVALID (src/errors.ts).
 */
export class ConfigError extends EtcdError {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super('CONFIG_INVALID', message);
    this.setting = setting;
  }
}

/**
 * HelpRequested is thrown by loadConfig when the arguments ask for help (`--help`, `-h`).
 * `help` is the full usage text: every setting with its default and environment variable.
 * It is an error so that a caller cannot start a server by accident after printing help.
 */
export class HelpRequested extends EtcdError {
  readonly help: string;
  constructor(help: string) {
    super('HELP_REQUESTED', help);
    this.help = help;
  }
}

/**
 * VersionRequested is thrown by loadConfig when the arguments ask for the version
 * (`--version`), which main prints (src/server/version.ts) before exiting 0, as etcd does.
 */
export class VersionRequested extends Error {
  readonly code = 'EVERSION';
  constructor() {
    super('version requested');
    this.name = 'VersionRequested';
  }
}
