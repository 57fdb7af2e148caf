import { EtcdError } from '../errors.js';
import { httpBodyBytesMax } from '../constants.js';

/**
 * JsonStreamSplitter cuts a request body made of concatenated JSON values — what etcd's
 * gateway reads with Go's json.Decoder on /v3/watch and /v3/lease/keepalive — into one text
 * per top-level object or array, across the body's chunk boundaries. It tracks only nesting
 * and strings; each piece is then parsed whole by parseJsonBody (Go's words on a syntax
 * error). Bytes between values other than whitespace fail as Go's decoder fails on them.
 *
 * Memory: an unfinished value is kept until it ends; past httpBodyBytesMax the stream fails
 * with etcd's "request is too large".
 */
export class JsonStreamSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  /** pending: a value has started and not ended (a body cut here is truncated). */
  get pending(): boolean {
    return this.depth > 0;
  }

  /** push adds text and returns every value completed by it, in order. */
  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth < 0) throw invalidCharacter(this.buf[i]!);
        if (this.depth === 0) out.push(this.buf.slice(this.start, i + 1));
      } else if (this.depth === 0 && !isJsonSpace(c)) {
        throw invalidCharacter(this.buf[i]!);
      }
    }
    if (this.depth === 0) {
      this.buf = '';
      this.scanned = 0;
    } else {
      this.buf = this.buf.slice(this.start);
      this.scanned = this.buf.length;
      this.start = 0;
    }
    if (this.buf.length > httpBodyBytesMax) throw new EtcdError('REQUEST_TOO_LARGE');
    return out;
  }
}

/** isJsonSpace: JSON's whitespace (space, tab, CR, LF): Go's decoder refuses other control
 * characters between values. */
function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function invalidCharacter(c: string): EtcdError {
  return new EtcdError('MALFORMED_JSON', `invalid character '${c}' looking for beginning of value`);
}
