import { describe, expect, it } from 'vitest';
import { memorySource } from '../io.js';
import { decodeToF32 } from '../safetensors/dtype.js';
import { readTensorBytes } from '../safetensors/header.js';
import { PickleAssembler, torchSaveBytes, torchZipBytes, type TorchFixtureTensor } from '../testing/torch-save.js';
import { readTorchCheckpoint } from './checkpoint.js';
import { TorchFormatError, type TorchFormatErrorCode } from './errors.js';

const LABEL = '/x/adapter_model.bin';

async function read(bytes: Uint8Array) {
  return readTorchCheckpoint(memorySource(LABEL, bytes));
}

/** The TorchFormatError that reading `bytes` throws. */
async function refusal(bytes: Uint8Array): Promise<TorchFormatError> {
  try {
    await read(bytes);
  } catch (e) {
    if (e instanceof TorchFormatError) return e;
    throw e;
  }
  throw new Error('expected a TorchFormatError');
}

async function expectRefused(bytes: Uint8Array, code: TorchFormatErrorCode, message: RegExp): Promise<TorchFormatError> {
  const e = await refusal(bytes);
  expect(e.code).toBe(code);
  expect(e.message).toContain(LABEL);
  expect(e.message).toMatch(message);
  return e;
}

/** A torch.save archive around a hand-made pickle (plus storages). */
function archiveWith(pickle: PickleAssembler, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const records = [{ name: 'a/data.pkl', data: pickle.bytes() }, { name: 'a/byteorder', data: new TextEncoder().encode('little') }];
  for (const [k, v] of Object.entries(storages)) records.push({ name: `a/data/${k}`, data: v });
  return torchZipBytes(records);
}

const f32 = (...v: number[]) => Float32Array.from(v);

describe('readTorchCheckpoint: state dicts as torch.save writes them', () => {
  const tensors: TorchFixtureTensor[] = [
    { name: 'w', shape: [2, 3], values: f32(1, 2, 3, 4, 5, 6) },
    { name: 'h', shape: [3], values: f32(0.5, -1, 2), dtype: 'F16' },
    { name: 'b', shape: [2], values: f32(1.5, -2), dtype: 'BF16' },
    { name: 'scalar', shape: [], values: f32(7) },
    { name: 'empty', shape: [0, 4], values: f32() },
  ];

  for (const [what, options] of [
    ['a plain dict (PEFT, transformers)', {}],
    ['an OrderedDict', { ordered: true }],
    ['an OrderedDict with _metadata set by BUILD (torch.save(model.state_dict()))', { ordered: true, withMetadataAttribute: true }],
    ['ZIP64 entries', { zip64Entries: true }],
    ['no byteorder record (older torch)', { byteorder: null }],
  ] as const) {
    it(`maps every tensor to its bytes: ${what}`, async () => {
      const bytes = torchSaveBytes(tensors, options);
      const header = await read(bytes);
      expect(header.label).toBe(LABEL);
      expect([...header.byName.keys()].sort()).toEqual(['b', 'empty', 'h', 'scalar', 'w']);
      const source = memorySource(LABEL, bytes);
      for (const t of tensors) {
        const info = header.byName.get(t.name)!;
        expect(info.dtype).toBe(t.dtype ?? 'F32');
        expect(info.shape).toEqual(t.shape);
        expect(info.fileOffset).toBe(info.begin);
        const got = decodeToF32(info.dtype as 'F32', await readTensorBytes(source, info));
        expect([...got]).toEqual([...t.values]);
      }
      // torch aligns every storage record to 64 bytes
      expect(header.byName.get('w')!.fileOffset % 64).toBe(0);
      const offsets = header.tensors.map((t) => t.begin);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    });
  }

  it('several tensors may view one storage (contiguous slices and reshapes)', async () => {
    const bytes = torchSaveBytes([
      { name: 'base', shape: [4, 2], values: f32(0, 1, 2, 3, 4, 5, 6, 7) },
      { name: 'rows', shape: [2, 2], values: f32(), viewOf: { tensor: 'base', offset: 4 } },
      { name: 'flat', shape: [8], values: f32(), viewOf: { tensor: 'base', offset: 0 } },
      { name: 'col-of-one', shape: [3, 1], values: f32(), viewOf: { tensor: 'base', offset: 1, stride: [1, 99] } },
    ]);
    const header = await read(bytes);
    const source = memorySource(LABEL, bytes);
    const values = async (n: string) => [...decodeToF32('F32', await readTensorBytes(source, header.byName.get(n)!))];
    expect(await values('rows')).toEqual([4, 5, 6, 7]);
    expect(await values('flat')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await values('col-of-one')).toEqual([1, 2, 3]);
    expect(header.byName.get('rows')!.fileOffset).toBe(header.byName.get('base')!.fileOffset + 16);
  });
});

describe('readTorchCheckpoint: refusals, each by name, nothing run', () => {
  it('a global outside the allow-list (os.system) is refused at GLOBAL, before any call', async () => {
    const p = new PickleAssembler().proto(2).global('os', 'system').str('echo pwned').tuple1().reduce().stop();
    const e = await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_GLOBAL', /the global os\.system \(GLOBAL at byte 2\).*nothing was run/);
    expect(e.subject).toBe(`${LABEL}: os.system`);
  });

  it('builtins.eval via STACK_GLOBAL (protocol 4) is refused too', async () => {
    const p = new PickleAssembler().proto(4).str('builtins').str('eval').raw(0x93).stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_GLOBAL', /builtins\.eval/);
  });

  it('torch._utils._rebuild_parameter is refused with the reason', async () => {
    const p = new PickleAssembler().proto(2).global('torch._utils', '_rebuild_parameter').stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_GLOBAL', /_rebuild_parameter.*torch\.nn\.Parameter/);
  });

  it('a storage type other than float32/16/bf16 is refused by name', async () => {
    const p = new PickleAssembler().proto(2).global('torch', 'LongStorage').stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_GLOBAL', /torch\.LongStorage.*float32, float16 and bfloat16/);
  });

  it('REDUCE on an allowed non-callable (a storage class) is refused', async () => {
    const p = new PickleAssembler().proto(2).global('torch', 'FloatStorage').emptyTuple().reduce().stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_OPCODE', /calls the global torch\.FloatStorage \(REDUCE at byte/);
  });

  it('REDUCE on a plain value is refused', async () => {
    const p = new PickleAssembler().proto(2).str('print').emptyTuple().reduce().stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_OPCODE', /calls a str \(REDUCE/);
  });

  for (const [name, op] of [['INST', 0x69], ['OBJ', 0x6f], ['NEWOBJ', 0x81], ['EXT1', 0x82], ['PERSID', 0x50], ['BINBYTES', 0x42], ['GET', 0x67]] as const) {
    it(`opcode ${name} is refused by name`, async () => {
      const p = new PickleAssembler().proto(2).emptyDict().raw(op).stop();
      const e = await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_OPCODE', new RegExp(`opcode ${name} at byte 3`));
      expect(e.subject).toBe(`${LABEL}: ${name}`);
    });
  }

  it('BUILD on anything but an OrderedDict is refused', async () => {
    const p = new PickleAssembler().proto(2).emptyDict().emptyDict().build().stop();
    await expectRefused(archiveWith(p), 'PICKLE_FORBIDDEN_OPCODE', /BUILD at byte 4 on a dict/);
  });

  it('a legacy (pre-1.6) torch file, a bare pickle, is refused without being unpickled', async () => {
    const legacy = new PickleAssembler().proto(2).global('os', 'system').stop().bytes();
    await expectRefused(legacy, 'TORCH_LEGACY_FORMAT', /legacy \(pre-1\.6\) torch\.save format/);
    await expectRefused(new TextEncoder().encode('not really a file'), 'TORCH_LEGACY_FORMAT', /not a zip archive/);
  });

  it('a truncated zip is refused', async () => {
    const bytes = torchSaveBytes([{ name: 'w', shape: [1], values: f32(1) }]);
    await expectRefused(bytes.subarray(0, bytes.byteLength - 30), 'TORCH_ZIP_INVALID', /no end-of-central-directory record/);
  });

  it('compressed records are refused', async () => {
    const bytes = torchZipBytes([{ name: 'a/data.pkl', data: new Uint8Array(4) }], { method: 8 });
    await expectRefused(bytes, 'TORCH_ZIP_INVALID', /compressed \(method 8\)/);
  });

  it('a zip without data.pkl is refused', async () => {
    await expectRefused(torchZipBytes([{ name: 'a/other', data: new Uint8Array(4) }]), 'TORCH_RECORD_MISSING', /no <archive>\/data\.pkl/);
  });

  it('big-endian data is refused by name', async () => {
    await expectRefused(torchSaveBytes([{ name: 'w', shape: [1], values: f32(1) }], { byteorder: 'big' }), 'TORCH_BIG_ENDIAN', /byteorder record says "big"/);
  });

  it('a non-contiguous view is refused, naming the tensor', async () => {
    const bytes = torchSaveBytes([
      { name: 'base', shape: [2, 3], values: f32(1, 2, 3, 4, 5, 6) },
      { name: 'base.T', shape: [3, 2], values: f32(), viewOf: { tensor: 'base', offset: 0, stride: [1, 3] } },
    ]);
    const e = await expectRefused(bytes, 'TORCH_TENSOR_UNSUPPORTED', /tensor "base\.T" is a non-contiguous view \(shape \[3, 2\], stride \[1, 3\]\)/);
    expect(e.subject).toBe(`${LABEL}: base.T`);
  });

  it('a view past the end of its storage is refused', async () => {
    const bytes = torchSaveBytes([
      { name: 'base', shape: [4], values: f32(1, 2, 3, 4) },
      { name: 'tail', shape: [3], values: f32(), viewOf: { tensor: 'base', offset: 2 } },
    ]);
    await expectRefused(bytes, 'TORCH_TENSOR_UNSUPPORTED', /"tail" \(3 elements from offset 2\) runs past the end of storage 0/);
  });

  it('a storage record whose size does not match its element count is refused', async () => {
    const p = stateDictOf('w', 'FloatStorage', 4, [4]);
    await expectRefused(archiveWith(p, { '0': new Uint8Array(12) }), 'TORCH_ZIP_INVALID', /is 12 bytes, but its storage holds 4 F32 elements \(16 bytes\)/);
  });

  it('a missing storage record is refused', async () => {
    await expectRefused(archiveWith(stateDictOf('w', 'FloatStorage', 4, [4])), 'TORCH_RECORD_MISSING', /storage 0, but the archive has no record a\/data\/0/);
  });

  it('a pickle that is not a state dict is refused', async () => {
    await expectRefused(archiveWith(new PickleAssembler().proto(2).emptyList().stop()), 'TORCH_NOT_STATE_DICT', /data\.pkl holds a list/);
    const intValue = new PickleAssembler().proto(2).emptyDict().str('step').int(3).raw(0x73).stop();
    await expectRefused(archiveWith(intValue), 'TORCH_NOT_STATE_DICT', /entry "step" is an int, not a tensor/);
  });

  it('malformed pickles are refused, not crashed on', async () => {
    await expectRefused(archiveWith(new PickleAssembler().proto(2).emptyDict()), 'PICKLE_INVALID', /ends without STOP/);
    await expectRefused(archiveWith(new PickleAssembler().proto(2).binget(3).stop()), 'PICKLE_INVALID', /memo slot 3 was never stored/);
    await expectRefused(archiveWith(new PickleAssembler().proto(2).tuple2().stop()), 'PICKLE_INVALID', /stack is empty/);
    // a string claiming 4 GiB in a 20-byte pickle
    await expectRefused(archiveWith(new PickleAssembler().proto(2).raw(0x58, 0xff, 0xff, 0xff, 0xff).stop()), 'PICKLE_INVALID', /needs 4294967295 bytes/);
  });

  it('deep nesting gets a limit error, not a stack overflow', async () => {
    const p = new PickleAssembler().proto(2);
    p.emptyTuple();
    for (let i = 0; i < 100; i++) p.tuple1();
    await expectRefused(archiveWith(p.stop()), 'TORCH_LIMIT', /nests containers deeper than 32/);
    const marks = new PickleAssembler().proto(2);
    for (let i = 0; i < 100; i++) marks.mark();
    await expectRefused(archiveWith(marks.stop()), 'TORCH_LIMIT', /more than 64 MARKs/);
    const lists = new PickleAssembler().proto(2).emptyList();
    for (let i = 0; i < 40; i++) lists.emptyList();
    for (let i = 0; i < 40; i++) lists.raw(0x61);
    await expectRefused(archiveWith(lists.stop()), 'TORCH_LIMIT', /nests containers deeper than 32/);
  });

  it('an archive claiming a huge record count or directory is refused before allocating', async () => {
    const bytes = torchSaveBytes([{ name: 'w', shape: [1], values: f32(1) }]);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const eocd = bytes.byteLength - 22;
    const zip64 = Number(dv.getBigUint64(eocd - 20 + 8, true));
    const many = bytes.slice();
    new DataView(many.buffer).setBigUint64(zip64 + 24, 10n ** 12n, true);
    new DataView(many.buffer).setBigUint64(zip64 + 32, 10n ** 12n, true);
    await expectRefused(many, 'TORCH_LIMIT', /claims 1000000000000 records/);
    const big = bytes.slice();
    new DataView(big.buffer).setBigUint64(zip64 + 40, 2n ** 40n, true);
    await expectRefused(big, 'TORCH_LIMIT', /central directory claims 1099511627776 bytes/);
    const past = bytes.slice();
    new DataView(past.buffer).setBigUint64(zip64 + 40, 10_000n, true);
    await expectRefused(past, 'TORCH_ZIP_INVALID', /runs past the end records/);
  });

  it('a tensor claiming a shape beyond any real size is refused', async () => {
    const p = stateDictOf('w', 'FloatStorage', 1, [2 ** 26, 2 ** 26, 2 ** 26]);
    await expectRefused(archiveWith(p, { '0': new Uint8Array(4) }), 'TORCH_LIMIT', /too large to be real/);
  });
});

/** `{name: _rebuild_tensor_v2(storage '0' of `numel` elements, 0, shape, contiguous stride, False, OrderedDict())}`. */
function stateDictOf(name: string, storageClass: string, numel: number, shape: number[]): PickleAssembler {
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return new PickleAssembler().proto(2).emptyDict().str(name)
    .global('torch._utils', '_rebuild_tensor_v2')
    .mark().mark().str('storage').global('torch', storageClass).str('0').str('cpu').int(numel).tuple().binPersId()
    .int(0).ints(shape).ints(stride).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce()
    .raw(0x73).stop();
}
