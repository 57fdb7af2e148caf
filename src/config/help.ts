import { envName, settings } from './settings.js';

/** helpText is the usage text for `myetcd --help`: every setting with its default and its
 * environment variables. Generated from the settings table, so it cannot go stale. */
export function helpText(): string {
  const lines = [
    'Usage: myetcd [flags]',
    '',
    'A distributed key-value store of etcd\'s class. Every setting may be given as a flag',
    '(--flag value or --flag=value), an environment variable (MYETCD_* or etcd\'s ETCD_*), or',
    'a key of the JSON file named by --config-file; flags win over the environment, which wins',
    'over the file.',
    '',
    'Flags:',
  ];
  for (const s of settings) {
    lines.push(`  --${s.flag} <${s.value}>`);
    lines.push(`      ${s.help}`);
    const env = `${envName(s.flag)} or ${envName(s.flag, 'ETCD_')}`;
    lines.push(`      default: ${s.defaultText}; env: ${env}`);
  }
  lines.push('  --version', '      Print the server and API versions and exit.');
  lines.push('  -h, --help', '      Show this help.');
  return lines.join('\n') + '\n';
}
