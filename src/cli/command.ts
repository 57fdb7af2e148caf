import type { Client } from '../client/client.js';
import type { FlagSpec, FlagValue } from './args.js';
import type { Printer } from './printer.js';

/**
 * command: what a myetcdctl command is (a node of etcdctl's cobra tree) and what it is given
 * when it runs.
 */

/** Io is where a command reads and writes (tests pass their own). */
export interface Io {
  /** out writes to stdout (bytes for -w protobuf). */
  out(data: string | Buffer): void;
  err(text: string): void;
  stdin: NodeJS.ReadableStream;
  /** signal ends the long-running commands (watch, lease keep-alive) when run in-process;
   * as a process they run until killed, as etcdctl does. */
  signal?: AbortSignal;
}

/** Ctx is what a command's run gets. */
export interface Ctx {
  /** flags are the global flags and the command's, parsed (durations in milliseconds). */
  flags: Record<string, FlagValue>;
  /** rawArgs are the command line words after the command's name (watch reads its `--`). */
  rawArgs: string[];
  env: NodeJS.ProcessEnv;
  io: Io;
  /** endpoints are --endpoints as given (trimmed), which etcdctl prints as they are. */
  endpoints: string[];
  /** display is the -w writer; an unknown format exits 4 when first asked for. */
  display(): Printer;
  /** client is a client over these endpoints (default: all) with the command's timeouts. */
  client(endpoints?: string[]): Client;
}

/** CommandDef is one command: a leaf runs, a group holds subcommands. */
export interface CommandDef {
  name: string;
  /** use is the usage line after the program name ("get [options] <key> [range_end]"). */
  use: string;
  short: string;
  flags?: Record<string, FlagSpec>;
  /** persistentFlags are inherited by the subcommands (endpoint --cluster). */
  persistentFlags?: Record<string, FlagSpec>;
  sub?: CommandDef[];
  run?(ctx: Ctx, args: string[]): Promise<number | void>;
}
