// Just enough HPACK (RFC 7541) to find the :authority of a request's header
// block and rewrite its value: integers, string literals and the static
// Huffman code. The dynamic table is not kept: a value rewritten to the same
// length leaves both sides' tables the same size, entry for entry.

/**
 * The Huffman code's lengths for symbols 0–256 (256 is EOS), each as the
 * character 48 + length. The code is canonical: the lengths define it.
 */
const CODE_LENGTHS =
  '=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?56565666577666567655677777?;>=LDFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN';
const EOS = 256;
const MAX_CODE_LENGTH = 30;

interface Canonical {
  /** The first code of each length, and how many codes have it. */
  first: number[];
  count: number[];
  /** Index in `symbols` of each length's first code. */
  offset: number[];
  /** Symbols by code length, then by symbol. */
  symbols: number[];
}

let canonical: Canonical | undefined;

function code(): Canonical {
  if (canonical) return canonical;
  const lengths = [...CODE_LENGTHS].map((c) => c.charCodeAt(0) - 48);
  const symbols = lengths.map((_, s) => s).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const count = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  for (const l of lengths) count[l]!++;
  const first = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  const offset = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  let next = 0;
  let index = 0;
  for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
    first[l] = next;
    offset[l] = index;
    next = (next + count[l]!) * 2;
    index += count[l]!;
  }
  canonical = { first, count, offset, symbols };
  return canonical;
}

/** Decodes a Huffman-coded string; undefined when it is not valid (an EOS inside, bad padding). */
export function huffmanDecode(data: Uint8Array): Buffer | undefined {
  const { first, count, offset, symbols } = code();
  const out: number[] = [];
  let value = 0;
  let length = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      value = value * 2 + ((byte >> bit) & 1);
      length++;
      if (length > MAX_CODE_LENGTH) return undefined;
      const i = value - first[length]!;
      if (i >= 0 && i < count[length]!) {
        const symbol = symbols[offset[length]! + i]!;
        if (symbol === EOS) return undefined;
        out.push(symbol);
        value = 0;
        length = 0;
      }
    }
  }
  // What is left is padding: fewer than 8 bits, all ones (the start of EOS).
  if (length >= 8 || value !== 2 ** length - 1) return undefined;
  return Buffer.from(out);
}

/** An integer with an N-bit prefix at `pos`: its value and where it ends; undefined when cut short. */
function readInt(buf: Uint8Array, pos: number, prefixBits: number): [number, number] | undefined {
  if (pos >= buf.length) return undefined;
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) return [value, pos];
  for (let shift = 0; shift <= 28; shift += 7) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, pos];
  }
  return undefined;
}

function writeInt(value: number, prefixBits: number, firstBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstBits | value]);
  const out = [firstBits | max];
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return Buffer.from(out);
}

interface StringLiteral {
  /** The octets, Huffman-decoded; undefined when the coding is invalid. */
  value: Buffer | undefined;
  end: number;
}

function readString(buf: Uint8Array, pos: number): StringLiteral | undefined {
  if (pos >= buf.length) return undefined;
  const huffman = (buf[pos]! & 0x80) !== 0;
  const len = readInt(buf, pos, 7);
  if (!len || len[1] + len[0] > buf.length) return undefined;
  const raw = buf.subarray(len[1], len[1] + len[0]);
  return { value: huffman ? huffmanDecode(raw) : Buffer.from(raw), end: len[1] + len[0] };
}

/** The static table's index of ":authority" (RFC 7541, Appendix A). */
const AUTHORITY_INDEX = 1;
const AUTHORITY = Buffer.from(':authority');

/**
 * The header block with each :authority value `fix` changes written anew (as
 * a plain literal of the new value, which must keep the length); undefined
 * when nothing changed or the block cannot be read (it then goes as it came,
 * and the server judges it). Only the static table names :authority here:
 * a name taken from the dynamic table is not recognised.
 */
export function rewriteAuthority(block: Uint8Array, fix: (value: Buffer) => Buffer): Buffer | undefined {
  const parts: Uint8Array[] = [];
  let copied = 0;
  let pos = 0;
  while (pos < block.length) {
    const b = block[pos]!;
    if (b & 0x80) {
      // Indexed field.
      const r = readInt(block, pos, 7);
      if (!r) return undefined;
      pos = r[1];
      continue;
    }
    if ((b & 0xe0) === 0x20) {
      // Dynamic table size update.
      const r = readInt(block, pos, 5);
      if (!r) return undefined;
      pos = r[1];
      continue;
    }
    // A literal: with incremental indexing (01), without (0000) or never indexed (0001).
    const prefixBits = b & 0x40 ? 6 : 4;
    const nameIndex = readInt(block, pos, prefixBits);
    if (!nameIndex) return undefined;
    let isAuthority = nameIndex[0] === AUTHORITY_INDEX;
    let valueAt = nameIndex[1];
    if (nameIndex[0] === 0) {
      const name = readString(block, valueAt);
      if (!name) return undefined;
      isAuthority = !!name.value?.equals(AUTHORITY);
      valueAt = name.end;
    }
    const value = readString(block, valueAt);
    if (!value) return undefined;
    if (isAuthority && value.value) {
      const fixed = fix(value.value);
      if (fixed.length !== value.value.length) throw new Error('rewriteAuthority: the new value must keep the length');
      if (!fixed.equals(value.value)) {
        parts.push(block.subarray(copied, valueAt), writeInt(fixed.length, 7, 0), fixed);
        copied = value.end;
      }
    }
    pos = value.end;
  }
  if (parts.length === 0) return undefined;
  parts.push(block.subarray(copied));
  return Buffer.concat(parts);
}
