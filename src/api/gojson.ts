/**
 * Go-compatible JSON reading for the etcd gateway. etcd 3.4's gateway reads a body with Go's
 * json.Decoder (first value only: trailing bytes are ignored; an empty body is an empty
 * request) and reports syntax errors in Go's words ("invalid character 'o' in literal null
 * (expecting 'u')", "unexpected EOF"). Clients and tests compare those strings, so we port
 * Go's scanner (encoding/json/scanner.go) for the error path.
 *
 * Hot path: JSON.parse on the whole body. We leave it only when it fails (then the Go scanner
 * finds the first value or the error) or when the body holds a number JSON.parse would not
 * keep exactly (a fraction, an exponent, 16+ digits): Go refuses `1.0` for an int64 with
 * "json: cannot unmarshal number 1.0 into ...", so those numbers are kept raw as GoNumber.
 */
import { EtcdError } from '../errors.js';

/** GoNumber is a JSON number kept as its source text (only produced on the slow path). */
export class GoNumber {
  constructor(readonly raw: string) {}
}

/** JsonValue is what parseJsonBody yields; numbers are JS numbers or GoNumber. */
export type JsonValue =
  | null
  | boolean
  | number
  | GoNumber
  | string
  | JsonValue[]
  | { [k: string]: JsonValue };

// A number right after ':' ',' or '[' with a fraction, an exponent or 16+ digits. Base64,
// the only strings etcd requests carry, has none of ':' ',' '[' so false hits are rare (and
// only cost the slow path).
const trickyNumber = /[:,[]\s*-?\d+(?:[.eE]|\d{15})/;

/**
 * parseJsonBody parses a gateway request body as etcd does: undefined for an empty or
 * all-whitespace body (etcd treats it as an empty request), otherwise the first JSON value.
 * Throws EtcdError MALFORMED_JSON with Go's message on a syntax error.
 */
export function parseJsonBody(text: string): JsonValue | undefined {
  if (!trickyNumber.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      // fall through: empty body, trailing bytes, or a syntax error in Go's words
    }
  }
  const r = goScan(text, 0, 'decoder');
  if (r.error !== undefined) throw new EtcdError('MALFORMED_JSON', r.error);
  if (r.end < 0) return undefined;
  const value = text.slice(r.start, r.end);
  return trickyNumber.test(value) || /^\s*-?\d/.test(value)
    ? new RawParser(value).parse()
    : (JSON.parse(value) as JsonValue);
}

/** ScanResult: the first value spans [start, end); end -1 means no value (empty input). */
export interface ScanResult {
  start: number;
  end: number;
  error?: string;
}

/**
 * goScan runs Go's JSON scanner over text from `from`. Mode 'decoder' is json.Decoder.Decode
 * (stops after the first value; EOF inside it is "unexpected EOF"); mode 'unmarshal' is
 * json.Unmarshal's checkValid (the whole text must be one value; "unexpected end of JSON
 * input"; bytes after it are "invalid character 'x' after top-level value").
 */
export function goScan(text: string, from: number, mode: 'decoder' | 'unmarshal'): ScanResult {
  const s = new Scanner();
  let start = -1;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (start < 0 && !isSpace(c)) start = i;
    const op = s.step(c);
    if (op === ERROR) return { start, end: -1, error: s.err };
    if (mode === 'decoder') {
      if (op === END) return { start, end: i };
      if (op === END_COMPOSITE && s.stack.length === 0) return { start, end: i + 1 };
    }
  }
  // end of input
  if (mode === 'decoder') {
    if (start < 0) return { start, end: -1 };
    if (s.endTop || s.step(SPACE) === END) return { start, end: text.length };
    return { start, end: -1, error: 'unexpected EOF' };
  }
  if (s.err !== undefined) return { start, end: -1, error: s.err };
  if (s.endTop) return { start, end: text.length };
  s.step(SPACE);
  if (s.endTop) return { start, end: text.length };
  return { start, end: -1, error: s.err ?? 'unexpected end of JSON input' };
}

const CONTINUE = 0;
const END = 1; // a top-level value ended before this char
const END_COMPOSITE = 2; // this char closed an object or array
const ERROR = 3;
const SPACE = 0x20;

const OBJECT_KEY = 0;
const OBJECT_VALUE = 1;
const ARRAY_VALUE = 2;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

type State = (s: Scanner, c: number) => number;

/** Scanner is a port of Go's encoding/json scanner state machine (per byte, here per char). */
class Scanner {
  stepFn: State = beginValue;
  stack: number[] = [];
  endTop = false;
  err: string | undefined;
  step(c: number): number {
    return this.stepFn(this, c);
  }
  error(c: number, context: string): number {
    this.stepFn = stateError;
    this.err = `invalid character ${quoteChar(c)} ${context}`;
    return ERROR;
  }
  pop(): number {
    this.stack.pop();
    if (this.stack.length === 0) {
      this.stepFn = endTop;
      this.endTop = true;
    } else {
      this.stepFn = endValue;
    }
    return END_COMPOSITE;
  }
}

const stateError: State = () => ERROR;

function beginValueOrEmpty(s: Scanner, c: number): number {
  if (isSpace(c)) return CONTINUE;
  if (c === 0x5d /* ] */) return endValue(s, c);
  return beginValue(s, c);
}

function beginValue(s: Scanner, c: number): number {
  if (isSpace(c)) return CONTINUE;
  switch (c) {
    case 0x7b: // {
      s.stepFn = beginStringOrEmpty;
      s.stack.push(OBJECT_KEY);
      return CONTINUE;
    case 0x5b: // [
      s.stepFn = beginValueOrEmpty;
      s.stack.push(ARRAY_VALUE);
      return CONTINUE;
    case 0x22: s.stepFn = inString; return CONTINUE;
    case 0x2d: s.stepFn = neg; return CONTINUE;
    case 0x30: s.stepFn = zero; return CONTINUE;
    case 0x74: s.stepFn = literal('true', 1); return CONTINUE;
    case 0x66: s.stepFn = literal('false', 1); return CONTINUE;
    case 0x6e: s.stepFn = literal('null', 1); return CONTINUE;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.stepFn = digits;
    return CONTINUE;
  }
  return s.error(c, 'looking for beginning of value');
}

function beginStringOrEmpty(s: Scanner, c: number): number {
  if (isSpace(c)) return CONTINUE;
  if (c === 0x7d /* } */) {
    s.stack[s.stack.length - 1] = OBJECT_VALUE;
    return endValue(s, c);
  }
  return beginString(s, c);
}

function beginString(s: Scanner, c: number): number {
  if (isSpace(c)) return CONTINUE;
  if (c === 0x22) {
    s.stepFn = inString;
    return CONTINUE;
  }
  return s.error(c, 'looking for beginning of object key string');
}

function endValue(s: Scanner, c: number): number {
  const n = s.stack.length;
  if (n === 0) {
    s.stepFn = endTop;
    s.endTop = true;
    return endTop(s, c);
  }
  if (isSpace(c)) {
    s.stepFn = endValue;
    return CONTINUE;
  }
  switch (s.stack[n - 1]) {
    case OBJECT_KEY:
      if (c === 0x3a) {
        s.stack[n - 1] = OBJECT_VALUE;
        s.stepFn = beginValue;
        return CONTINUE;
      }
      return s.error(c, 'after object key');
    case OBJECT_VALUE:
      if (c === 0x2c) {
        s.stack[n - 1] = OBJECT_KEY;
        s.stepFn = beginString;
        return CONTINUE;
      }
      if (c === 0x7d) return s.pop();
      return s.error(c, 'after object key:value pair');
    default:
      if (c === 0x2c) {
        s.stepFn = beginValue;
        return CONTINUE;
      }
      if (c === 0x5d) return s.pop();
      return s.error(c, 'after array element');
  }
}

function endTop(s: Scanner, c: number): number {
  if (!isSpace(c)) s.error(c, 'after top-level value'); // reported on the next call
  return END;
}

function inString(s: Scanner, c: number): number {
  if (c === 0x22) {
    s.stepFn = endValue;
    return CONTINUE;
  }
  if (c === 0x5c) {
    s.stepFn = inStringEsc;
    return CONTINUE;
  }
  if (c < 0x20) return s.error(c, 'in string literal');
  return CONTINUE;
}

function inStringEsc(s: Scanner, c: number): number {
  switch (c) {
    case 0x62: case 0x66: case 0x6e: case 0x72: case 0x74: case 0x5c: case 0x2f: case 0x22:
      s.stepFn = inString;
      return CONTINUE;
    case 0x75:
      s.stepFn = escU(0);
      return CONTINUE;
  }
  return s.error(c, 'in string escape code');
}

const escUStates: State[] = [];
function escU(seen: number): State {
  let st = escUStates[seen];
  if (st === undefined) {
    st = (s, c) => {
      if (!isHex(c)) return s.error(c, 'in \\u hexadecimal character escape');
      s.stepFn = seen === 3 ? inString : escU(seen + 1);
      return CONTINUE;
    };
    escUStates[seen] = st;
  }
  return st;
}

function neg(s: Scanner, c: number): number {
  if (c === 0x30) {
    s.stepFn = zero;
    return CONTINUE;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.stepFn = digits;
    return CONTINUE;
  }
  return s.error(c, 'in numeric literal');
}

function digits(s: Scanner, c: number): number {
  if (isDigit(c)) return CONTINUE;
  return zero(s, c);
}

function zero(s: Scanner, c: number): number {
  if (c === 0x2e) {
    s.stepFn = dot;
    return CONTINUE;
  }
  if (c === 0x65 || c === 0x45) {
    s.stepFn = exp;
    return CONTINUE;
  }
  return endValue(s, c);
}

function dot(s: Scanner, c: number): number {
  if (isDigit(c)) {
    s.stepFn = dotDigits;
    return CONTINUE;
  }
  return s.error(c, 'after decimal point in numeric literal');
}

function dotDigits(s: Scanner, c: number): number {
  if (isDigit(c)) return CONTINUE;
  if (c === 0x65 || c === 0x45) {
    s.stepFn = exp;
    return CONTINUE;
  }
  return endValue(s, c);
}

function exp(s: Scanner, c: number): number {
  if (c === 0x2b || c === 0x2d) {
    s.stepFn = expSign;
    return CONTINUE;
  }
  return expSign(s, c);
}

function expSign(s: Scanner, c: number): number {
  if (isDigit(c)) {
    s.stepFn = expDigits;
    return CONTINUE;
  }
  return s.error(c, 'in exponent of numeric literal');
}

function expDigits(s: Scanner, c: number): number {
  if (isDigit(c)) return CONTINUE;
  return endValue(s, c);
}

const literalStates = new Map<string, State>();
function literal(word: string, at: number): State {
  const key = word + at;
  let st = literalStates.get(key);
  if (st === undefined) {
    const want = word.charCodeAt(at);
    st = (s, c) => {
      if (c !== want) return s.error(c, `in literal ${word} (expecting ${quoteChar(want)})`);
      s.stepFn = at === word.length - 1 ? endValue : literal(word, at + 1);
      return CONTINUE;
    };
    literalStates.set(key, st);
  }
  return st;
}

/** quoteChar formats a byte as Go's scanner does: 'x', '\'', '"', '\n', '\x01', '\u0080'. */
export function quoteChar(c: number): string {
  if (c >= 0x80) c = firstUtf8Byte(c);
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  return `'${goQuoteRune(c)}'`;
}

function firstUtf8Byte(code: number): number {
  if (code < 0x800) return 0xc0 | (code >> 6);
  if (code >= 0xd800 && code <= 0xdbff) return 0xf0; // a surrogate pair: 4-byte sequence
  return 0xe0 | (code >> 12);
}

function goQuoteRune(c: number): string {
  switch (c) {
    case 0x07: return '\\a';
    case 0x08: return '\\b';
    case 0x0c: return '\\f';
    case 0x0a: return '\\n';
    case 0x0d: return '\\r';
    case 0x09: return '\\t';
    case 0x0b: return '\\v';
    case 0x5c: return '\\\\';
  }
  if (c < 0x20 || c === 0x7f) return '\\x' + c.toString(16).padStart(2, '0');
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return '\\u' + c.toString(16).padStart(4, '0');
  return String.fromCharCode(c);
}

/** goQuote approximates Go's %q (strconv.Quote) for the enum error message. */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** RawParser parses text Go's scanner already validated, keeping numbers as GoNumber. */
class RawParser {
  private i = 0;
  constructor(private readonly t: string) {}
  parse(): JsonValue {
    this.ws();
    return this.value();
  }
  private ws(): void {
    while (this.i < this.t.length && isSpace(this.t.charCodeAt(this.i))) this.i++;
  }
  private value(): JsonValue {
    const c = this.t.charCodeAt(this.i);
    if (c === 0x7b) {
      this.i++;
      const o: { [k: string]: JsonValue } = {};
      this.ws();
      if (this.t.charCodeAt(this.i) === 0x7d) {
        this.i++;
        return o;
      }
      for (;;) {
        this.ws();
        const k = this.string();
        this.ws();
        this.i++; // :
        this.ws();
        const v = this.value();
        Object.defineProperty(o, k, { value: v, enumerable: true, writable: true,
          configurable: true });
        this.ws();
        if (this.t.charCodeAt(this.i++) === 0x7d) return o;
      }
    }
    if (c === 0x5b) {
      this.i++;
      const a: JsonValue[] = [];
      this.ws();
      if (this.t.charCodeAt(this.i) === 0x5d) {
        this.i++;
        return a;
      }
      for (;;) {
        this.ws();
        a.push(this.value());
        this.ws();
        if (this.t.charCodeAt(this.i++) === 0x5d) return a;
      }
    }
    if (c === 0x22) return this.string();
    if (c === 0x74) { this.i += 4; return true; }
    if (c === 0x66) { this.i += 5; return false; }
    if (c === 0x6e) { this.i += 4; return null; }
    const m = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.i;
    const raw = m.exec(this.t)![0];
    this.i += raw.length;
    return new GoNumber(raw);
  }
  private string(): string {
    const start = this.i;
    this.i++;
    for (;;) {
      const c = this.t.charCodeAt(this.i++);
      if (c === 0x5c) this.i++;
      else if (c === 0x22) break;
    }
    return JSON.parse(this.t.slice(start, this.i)) as string;
  }
}
