import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DTYPE_BITS, DTYPES, type Dtype } from './dtype.js';
import { SafetensorsFormatError } from './errors.js';
import { parseSafetensorsBytes, type SafetensorsHeader } from './header.js';
import { layoutSafetensors, type TensorSpec } from './writer.js';

/** Parses, and fails the property on anything thrown that is not a SafetensorsFormatError. */
function parseOrFormatError(bytes: Uint8Array): SafetensorsHeader | SafetensorsFormatError {
  try {
    return parseSafetensorsBytes(bytes, 'fuzz.safetensors');
  } catch (error) {
    if (error instanceof SafetensorsFormatError) {
      expect(error.message.startsWith('fuzz.safetensors is not a valid safetensors file: ')).toBe(true);
      return error;
    }
    throw error;
  }
}

/** What every accepted header must satisfy, checked independently of the parser's own code. */
function checkInvariants(h: SafetensorsHeader, fileSize: number): void {
  expect(h.dataStart).toBe(8 + h.headerLength);
  let at = 0;
  for (const t of h.tensors) {
    expect(t.begin).toBe(at);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect(t.byteLength).toBe((numel * DTYPE_BITS[t.dtype]) / 8);
    expect(t.end - t.begin).toBe(t.byteLength);
    expect(t.fileOffset).toBe(h.dataStart + t.begin);
    at = t.end;
  }
  expect(h.dataStart + at).toBe(fileSize);
  expect(h.byName.size).toBe(h.tensors.length);
}

function withHeader(header: string, dataLength: number, n?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.byteLength + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.byteLength), true);
  out.set(h, 8);
  return out;
}

const dtypeArb = fc.constantFrom<Dtype>(...DTYPES);
const nameArb = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__metadata__', 'a', 'b', 'h.0.attn.c_attn.weight'));

/** A tensor spec the writer accepts (sub-byte dtypes get an even element count). */
const specArb: fc.Arbitrary<TensorSpec> = fc
  .record({ name: nameArb, dtype: dtypeArb, shape: fc.array(fc.nat({ max: 5 }), { maxLength: 3 }) })
  .map((s) => (DTYPE_BITS[s.dtype] < 8 ? { ...s, shape: [...s.shape, 8] } : s))
  .filter((s) => s.name !== '__metadata__');

const validFileArb = fc
  .uniqueArray(specArb, { selector: (s) => s.name, maxLength: 6 })
  .chain((specs) => fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }), { nil: null }).map((metadata) => ({ specs, metadata })))
  .map(({ specs, metadata }) => {
    const layout = layoutSafetensors(specs, metadata);
    const bytes = new Uint8Array(layout.totalSize);
    bytes.set(layout.prefixAndHeader);
    return { layout, bytes };
  });

/** Byte-level damage: overwrite, truncate, extend, delete, insert, or change the header length. */
type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; extra: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'insert'; at: number; extra: Uint8Array }
  | { kind: 'length'; delta: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), extra: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -16, max: 16 }) }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const pos = (at: number): number => (bytes.length === 0 ? 0 : at % bytes.length);
  switch (m.kind) {
    case 'set': {
      const out = bytes.slice();
      if (out.length > 0) out[pos(m.at)] = m.value;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, pos(m.at));
    case 'append':
      return new Uint8Array([...bytes, ...m.extra]);
    case 'delete':
      return new Uint8Array([...bytes.subarray(0, pos(m.at)), ...bytes.subarray(pos(m.at) + m.count)]);
    case 'insert':
      return new Uint8Array([...bytes.subarray(0, pos(m.at)), ...m.extra, ...bytes.subarray(pos(m.at))]);
    case 'length': {
      const out = bytes.slice();
      if (out.length >= 8) {
        const view = new DataView(out.buffer);
        view.setBigUint64(0, BigInt.asUintN(64, view.getBigUint64(0, true) + BigInt(m.delta)), true);
      }
      return out;
    }
  }
}

/** JSON-ish values that are sometimes right for a field and often wrong. */
const u64Text = fc.oneof(
  fc.nat({ max: 40 }).map(String),
  fc.constantFrom('0', '-1', '1.0', '1e2', '-0', '18446744073709551615', '18446744073709551616', '9223372036854775807', '9007199254740993'),
  fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }).map(String),
);
const fieldValue = (good: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom('null', 'true', '"x"', '{}', '[]', '[1,2,3]', '1.5') });
const entryText = fc
  .record({
    name: nameArb,
    dtype: fieldValue(fc.oneof(dtypeArb, fc.constantFrom('F128', 'f32', '')).map((d) => JSON.stringify(d))),
    shape: fieldValue(fc.array(u64Text, { maxLength: 3 }).map((dims) => `[${dims.join(',')}]`)),
    offsets: fieldValue(fc.array(u64Text, { minLength: 1, maxLength: 3 }).map((o) => `[${o.join(',')}]`)),
    drop: fc.constantFrom(-1, -1, -1, 0, 1, 2),
  })
  .map(({ name, dtype, shape, offsets, drop }) => {
    const fields = [`"dtype":${dtype}`, `"shape":${shape}`, `"data_offsets":${offsets}`].filter((_, i) => i !== drop);
    return `${JSON.stringify(name)}:{${fields.join(',')}}`;
  });
const metadataText = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 })).map((m) => `"__metadata__":${JSON.stringify(m)}`),
  fc.constantFrom('"__metadata__":null', '"__metadata__":{"a":1}', '"__metadata__":"pt"', '"__metadata__":{"a":"b","a":"c"}'),
);
const ws = fc.constantFrom('', ' ', '\t\n', '\r ', '  ');
const headerTextArb = fc
  .record({ entries: fc.array(fc.oneof({ weight: 5, arbitrary: entryText }, { weight: 1, arbitrary: metadataText }), { maxLength: 5 }), lead: ws, trail: ws })
  .map(({ entries, lead, trail }) => `${lead}{${entries.join(',')}}${trail}`);

/**
 * Nearly valid headers: correct contiguous offsets for random tensors, then a few semantic
 * perturbations (huge or changed dims, changed dtype, shifted or swapped offsets, duplicate names),
 * so the later checks (offsets, overflow, sub-byte alignment, sizes, coverage) are reached often.
 */
type Perturbation =
  | { kind: 'dim'; tensor: number; dim: string }
  | { kind: 'dtype'; tensor: number; dtype: Dtype }
  | { kind: 'shift'; tensor: number; which: 0 | 1; delta: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'duplicate'; tensor: number };

const perturbationArb: fc.Arbitrary<Perturbation> = fc.oneof(
  fc.record({ kind: fc.constant('dim' as const), tensor: fc.nat(), dim: u64Text }),
  fc.record({ kind: fc.constant('dtype' as const), tensor: fc.nat(), dtype: dtypeArb }),
  fc.record({ kind: fc.constant('shift' as const), tensor: fc.nat(), which: fc.constantFrom(0 as const, 1 as const), delta: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), tensor: fc.nat() }),
);

const nearlyValidArb = fc
  .record({
    tensors: fc.uniqueArray(fc.record({ name: fc.string({ maxLength: 4 }), dtype: dtypeArb, shape: fc.array(fc.nat({ max: 4 }), { maxLength: 3 }) }), {
      selector: (t) => t.name,
      minLength: 1,
      maxLength: 5,
    }),
    perturbations: fc.array(perturbationArb, { maxLength: 2 }),
    dataDelta: fc.constantFrom(0, 0, 0, -1, 1),
    lead: ws,
    trail: ws,
  })
  .map(({ tensors, perturbations, dataDelta, lead, trail }) => {
    let offset = 0n;
    const entries = tensors
      .filter((t) => t.name !== '__metadata__')
      .map((t) => {
        // Round sub-byte sizes up so unperturbed entries are mostly valid.
        const bytes = (t.shape.reduce((a, b) => a * BigInt(b), 1n) * BigInt(DTYPE_BITS[t.dtype]) + 7n) / 8n;
        const e = { name: t.name, dtype: t.dtype as string, shape: t.shape.map(String), offsets: [offset, offset + bytes] };
        offset += bytes;
        return e;
      });
    for (const p of perturbations) {
      if (entries.length === 0) break;
      const at = (i: number) => entries[i % entries.length]!;
      if (p.kind === 'dim') {
        const e = at(p.tensor);
        if (e.shape.length > 0) e.shape[p.tensor % e.shape.length] = p.dim;
        else e.shape.push(p.dim);
      } else if (p.kind === 'dtype') at(p.tensor).dtype = p.dtype;
      else if (p.kind === 'shift') {
        const e = at(p.tensor);
        e.offsets[p.which] = e.offsets[p.which]! + BigInt(p.delta) < 0n ? 0n : e.offsets[p.which]! + BigInt(p.delta);
      } else if (p.kind === 'swap') [at(p.a).offsets, at(p.b).offsets] = [at(p.b).offsets, at(p.a).offsets];
      else entries.push({ ...at(p.tensor) });
    }
    const text = entries.map((e) => `${JSON.stringify(e.name)}:{"dtype":${JSON.stringify(e.dtype)},"shape":[${e.shape.join(',')}],"data_offsets":[${e.offsets.join(',')}]}`);
    return withHeader(`${lead}{${text.join(',')}}${trail}`, Math.max(0, Number(offset) + dataDelta));
  });

describe('header parsing never throws anything but SafetensorsFormatError', () => {
  it('parses every file the writer produces, with the writer’s layout', () => {
    fc.assert(
      fc.property(validFileArb, ({ layout, bytes }) => {
        const h = parseOrFormatError(bytes);
        if (h instanceof SafetensorsFormatError) throw h;
        checkInvariants(h, bytes.length);
        expect(h.tensors.map(({ name, dtype, shape, begin, end }) => ({ name, dtype, shape, begin, end }))).toEqual(
          [...layout.entries].sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('mutated writer output: a valid parse or a format error', () => {
    fc.assert(
      fc.property(validFileArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), ({ bytes }, mutations) => {
        const damaged = mutations.reduce(mutate, bytes);
        const result = parseOrFormatError(damaged);
        if (!(result instanceof SafetensorsFormatError)) checkInvariants(result, damaged.length);
      }),
      { numRuns: 3000 },
    );
  });

  it('random headers with good and bad fields: a valid parse or a format error', () => {
    fc.assert(
      fc.property(headerTextArb, fc.nat({ max: 64 }), (header, dataLength) => {
        const bytes = withHeader(header, dataLength);
        const result = parseOrFormatError(bytes);
        if (!(result instanceof SafetensorsFormatError)) checkInvariants(result, bytes.length);
      }),
      { numRuns: 3000 },
    );
  });

  it('nearly valid headers with semantic damage: a valid parse or a format error', () => {
    fc.assert(
      fc.property(nearlyValidArb, (bytes) => {
        const result = parseOrFormatError(bytes);
        if (!(result instanceof SafetensorsFormatError)) checkInvariants(result, bytes.length);
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes and random JSON: a valid parse or a format error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        parseOrFormatError(bytes);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.json({ depthSize: 'small' }), fc.nat({ max: 16 }), fc.integer({ min: -2, max: 2 }), (json, dataLength, lengthDelta) => {
        const header = new TextEncoder().encode(json);
        parseOrFormatError(withHeader(json, dataLength, Math.max(0, header.byteLength + lengthDelta)));
      }),
      { numRuns: 1000 },
    );
  });
});
