/**
 * Opening the picked base and adapter directories as the CLI opens them from disk: the configs
 * parsed and checked with core's checks, the weight headers read (safetensors, or the torch.save files
 * of older PEFT and transformers, whose pickles core interprets without executing), no tensor bytes
 * read. The
 * messages are the CLI's, naming the picked files (`base/config.json`, `adapter/adapter_config.json`).
 */
import { ADAPTER_SAFETENSORS, adapterConfigMissing, adapterTokenizer, adapterWeightsFile, adapterWeightsMissing, baseConfigMissing, baseFilesCarried, baseWeightsMissing, bytesEqual, checkBaseConfig, findCheckpointWeightFiles, InputError, parseAdapterConfig, parseJsonObject, readWeightsHeader, type ByteSource, type LoraAdapterConfig, type PlanMergeInput, type SafetensorsHeader } from '@lorafuse/core';
import { fileSource, labelOf, type FileByteSource, type PickedDir } from './picked-files.js';

/** An opened base checkpoint. */
export interface OpenedBase {
  readonly label: string;
  readonly config: Record<string, unknown>;
  /** config.json as picked: written unchanged when the plan changes nothing in it. */
  readonly configBytes: Uint8Array;
  readonly headers: readonly SafetensorsHeader[];
}

/** An opened adapter. */
export interface OpenedAdapter {
  readonly label: string;
  readonly config: LoraAdapterConfig;
  readonly header: SafetensorsHeader;
}

/** The opened inputs: the planner's view, and the byte source of every file a plan may name. */
export interface OpenedInputs {
  readonly base: OpenedBase;
  /** The adapters, in merge order. */
  readonly adapters: readonly OpenedAdapter[];
  readonly planInput: Omit<PlanMergeInput, 'options'>;
  readonly sourceOf: (label: string) => FileByteSource;
  /**
   * The picked files the output carries as they are, as `lorafuse merge` copies them: the base's
   * other files (tokenizer, generation_config.json, ...), an adapter's tokenizer instead of the
   * base's when one saved it.
   */
  readonly carried: ReadonlyArray<{ readonly name: string; readonly file: File }>;
}

async function readText(file: File): Promise<{ text: string; bytes: Uint8Array }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  return { text: new TextDecoder().decode(bytes), bytes };
}

/**
 * Opens the base and the adapters (merged active together in this order, `weights[i]` adapter i's
 * weight, default 1); throws the CLI's typed errors for what is missing or malformed.
 */
export async function openInputs(base: PickedDir, adapters: readonly PickedDir[], weights?: readonly number[]): Promise<OpenedInputs> {
  const sources = new Map<string, FileByteSource>();
  const open = (dir: PickedDir, name: string) => {
    const label = labelOf(dir, name);
    const source = fileSource(label, dir.files.get(name)!);
    sources.set(label, source);
    return source;
  };

  if (base.files.size === 0) throw new InputError('BASE_DIR_MISSING', 'no base directory was picked', { subject: base.dir, hint: 'Pick the directory GPT2LMHeadModel.save_pretrained wrote (config.json and model.safetensors).' });
  const configFile = base.files.get('config.json');
  if (!configFile) {
    throw baseConfigMissing(base.dir, labelOf(base, 'config.json'));
  }
  const configLabel = labelOf(base, 'config.json');
  const { text: configText, bytes: configBytes } = await readText(configFile);
  const config = parseJsonObject(configText, configLabel, 'config.json');
  checkBaseConfig(config, configLabel);
  const baseHeaders = await openBaseWeights(base, open);
  const openedBase: OpenedBase = { label: base.dir, config, configBytes, headers: baseHeaders };

  if (adapters.length === 0) adapters = [{ dir: 'adapter', files: new Map() }];
  const opened: OpenedAdapter[] = [];
  for (const adapter of adapters) opened.push(await openAdapter(adapter, open));

  const tokenizer = await adapterTokenizer(
    adapters.map((a) => ({ dir: a.dir, names: a.files.keys(), files: a.files })),
    async (a, b, name) => bytesEqual(new Uint8Array(await a.files.get(name)!.arrayBuffer()), new Uint8Array(await b.files.get(name)!.arrayBuffer())),
  );
  const carried = [
    ...baseFilesCarried(base.files.keys(), tokenizer !== null).map((name) => ({ name, file: base.files.get(name)! })),
    ...(tokenizer?.names ?? []).map((name) => ({ name, file: tokenizer!.adapter.files.get(name)! })),
  ].sort((x, y) => (x.name < y.name ? -1 : 1));
  return {
    base: openedBase,
    adapters: opened,
    carried,
    planInput: {
      base: { label: openedBase.label, config, files: openedBase.headers },
      adapters: opened.map((a, i) => ({ label: a.label, config: a.config, file: a.header, ...(weights?.[i] === undefined ? {} : { weight: weights[i] }) })),
    },
    sourceOf: (label) => {
      const s = sources.get(label);
      if (!s) throw new Error(`internal: no picked file ${label}`);
      return s;
    },
  };
}

/** One adapter directory: its config parsed and checked, its weights' header read. */
async function openAdapter(adapter: PickedDir, open: (dir: PickedDir, name: string) => ByteSource): Promise<OpenedAdapter> {
  if (adapter.files.size === 0) throw new InputError('ADAPTER_DIR_MISSING', adapter.dir === 'adapter' ? 'no adapter directory was picked' : `no directory was picked for ${adapter.dir}`, { subject: adapter.dir, hint: 'Pick the directory PeftModel.save_pretrained wrote (adapter_config.json and adapter_model.safetensors).' });
  const adapterConfigFile = adapter.files.get('adapter_config.json');
  if (!adapterConfigFile) {
    throw adapterConfigMissing(adapter.dir, labelOf(adapter, 'adapter_config.json'));
  }
  const adapterConfigLabel = labelOf(adapter, 'adapter_config.json');
  const { text: adapterText } = await readText(adapterConfigFile);
  parseJsonObject(adapterText, adapterConfigLabel, 'adapter_config.json');
  const adapterConfig = parseAdapterConfig(adapterText, adapterConfigLabel);
  const weightsName = adapterWeightsFile(new Set(adapter.files.keys()));
  if (weightsName === undefined) throw adapterWeightsMissing(adapter.dir, labelOf(adapter, ADAPTER_SAFETENSORS));
  const adapterHeader = await readWeightsHeader(open(adapter, weightsName), weightsName);
  return { label: adapter.dir, config: adapterConfig, header: adapterHeader };
}

/**
 * The base's weight headers, from the files transformers would load (model.safetensors, its shard
 * index, pytorch_model.bin, its shard index: core's {@link findCheckpointWeightFiles}), every shard
 * an index lists picked with it; each read by core's `readWeightsHeader` (`.bin` never unpickled,
 * the CLI's tensor cap).
 */
async function openBaseWeights(base: PickedDir, open: (dir: PickedDir, name: string) => ByteSource): Promise<SafetensorsHeader[]> {
  const found = await findCheckpointWeightFiles(new Set(base.files.keys()), {
    readIndex: async (name) => ({ text: (await readText(base.files.get(name)!)).text, label: labelOf(base, name) }),
    checkShards: async (indexLabel, shards) => {
      for (const shard of shards) {
        if (!base.files.has(shard)) throw new InputError('SHARD_MISSING', `${indexLabel} lists ${shard}, which was not picked with it`, { subject: shard, hint: 'Pick every shard listed in the index (or the whole directory).' });
      }
    },
  });
  if (!found) throw baseWeightsMissing(base.dir);
  const headers: SafetensorsHeader[] = [];
  for (const name of found.dataFiles) headers.push(await readWeightsHeader(open(base, name), name));
  return headers;
}
