/**
 * The merge app's page: pickers for the base and one or more adapter directories (or their files),
 * each adapter's weight, the CLI's plan options, a merge button, an output choice, and what came of
 * it — findings, plan, proof — with the merged model.safetensors and config.json written into the
 * chosen directory or offered as downloads. Everything stays on the machine: nothing is uploaded anywhere.
 */
import { LorafuseError, UsageError } from '@lorafuse/errors';
import type { PlanMergeOptions } from '@lorafuse/core';
import { mountDeltaView } from './delta/delta-view.js';
import { mergeInPage, type PageMergeOptions } from './merge-in-page.js';
import { OUTPUT_CONFIG, OUTPUT_WEIGHTS } from './merge-output.js';
import { openInputs } from './open-inputs.js';
import { wireOutputChoice } from './output-choice.js';
import { pickedDir, type PickedDir } from './picked-files.js';
import { findingLines, planLines, proofLines } from './plan-view.js';

const byTestId = <T extends HTMLElement>(id: string) => document.querySelector<T>(`[data-testid="${id}"]`)!;

const baseInput = byTestId<HTMLInputElement>('base-files');
const adaptersBox = byTestId('adapters');
const firstAdapterZone = adaptersBox.querySelector<HTMLElement>('.drop')!;
const mergeButton = byTestId<HTMLButtonElement>('merge');
const status = byTestId('status');
const errorBox = byTestId('error');
const findings = byTestId('findings');
const planBox = byTestId('plan');
const proofBox = byTestId('proof');
const downloadModel = byTestId<HTMLAnchorElement>('download-model');
const downloadConfig = byTestId<HTMLAnchorElement>('download-config');
// The base's other files (tokenizer, generation_config.json, ...), one link each.
const downloadCarried = byTestId('download-carried');
const showError = (e: unknown) => {
  errorBox.hidden = false;
  errorBox.textContent = e instanceof LorafuseError ? `${e.message}${e.hint ? `\n${e.hint}` : ''}` : `internal error: ${e instanceof Error ? e.message : String(e)}`;
};
const nextOutput = wireOutputChoice(byTestId<HTMLButtonElement>('choose-output'), byTestId('output-dir'), showError);
const deltaView = mountDeltaView(byTestId('delta-pictures'));

/** The latest choice per picker: its file input, its directory input or a drop, whichever came last. */
const chosen = new Map<HTMLInputElement, File[]>();
const filesOf = (input: HTMLInputElement): File[] => chosen.get(input) ?? [];

function wirePicker(input: HTMLInputElement): void {
  const zone = input.closest<HTMLElement>('.drop')!;
  const picked = zone.querySelector('.picked')!;
  const choose = (files: File[]) => {
    chosen.set(input, files);
    picked.textContent = `${files.length} file(s): ${files.map((f) => f.name).join(', ')}`;
  };
  for (const el of [input, zone.querySelector<HTMLInputElement>('input.dir')!]) el.addEventListener('change', () => choose([...(el.files ?? [])]));
  zone.addEventListener('dragover', (e) => e.preventDefault());
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    void droppedFiles(e.dataTransfer).then(choose);
  });
}
wirePicker(baseInput);
wirePicker(firstAdapterZone.querySelector<HTMLInputElement>('[data-testid="adapter-files"]')!);

/** Adapter n (from 2) gets a picker like the first's: test ids `adapter-files-n`, `adapter-weight-n`. */
byTestId<HTMLButtonElement>('add-adapter').addEventListener('click', () => {
  const n = adaptersBox.querySelectorAll('.drop').length + 1;
  const zone = firstAdapterZone.cloneNode(true) as HTMLElement;
  zone.querySelector('.title')!.textContent = `Adapter ${n} directory`;
  zone.querySelector('.picked')!.textContent = '';
  zone.querySelector('[data-testid="adapter-files"]')!.setAttribute('data-testid', `adapter-files-${n}`);
  const weight = zone.querySelector<HTMLInputElement>('[data-testid="adapter-weight"]')!;
  weight.setAttribute('data-testid', `adapter-weight-${n}`);
  weight.value = '1';
  adaptersBox.append(zone);
  wirePicker(zone.querySelector<HTMLInputElement>(`[data-testid="adapter-files-${n}"]`)!);
});

/** The adapters as picked, in order (`adapter`, `adapter-2`, ...), and their weights (none when all are 1, as without --weights). */
function pickedAdapters(): { dirs: PickedDir[]; weights: number[] | undefined } {
  const zones = [...adaptersBox.querySelectorAll<HTMLElement>('.drop')];
  const weights = zones.map((zone, i) => {
    const field = zone.querySelector<HTMLInputElement>('input.weight')!;
    const text = field.value.trim();
    // A number field whose text does not parse reads as '' (badInput): not the default weight 1.
    const w = field.validity.badInput ? NaN : text === '' ? 1 : Number(text);
    if (!Number.isFinite(w)) throw new UsageError('BAD_ARGUMENTS', `the weight of adapter ${i + 1} must be a number${text === '' ? '' : `, got "${text}"`}`, { subject: 'weight', hint: 'Example: 1, 0.5 or -1 (a negative weight subtracts the adapter).' });
    return w;
  });
  const dirs = zones.map((zone, i) => pickedDir(i === 0 ? 'adapter' : `adapter-${i + 1}`, filesOf(zone.querySelector<HTMLInputElement>('input[type="file"]:not(.dir)')!)));
  return { dirs, weights: weights.every((w) => w === 1) ? undefined : weights };
}

/** The options chosen, as `lorafuse merge` would take them. */
function chosenOptions(): PageMergeOptions {
  const tie = byTestId<HTMLSelectElement>('tie').value as NonNullable<PlanMergeOptions['tie']>;
  const follow = byTestId<HTMLSelectElement>('follow').value;
  const padField = byTestId<HTMLInputElement>('pad-token-id');
  const padText = padField.value.trim();
  // Unparseable text reads as '' (badInput): an error, not "no --pad-token-id".
  const pad = padField.validity.badInput ? NaN : padText === '' ? undefined : Number(padText);
  if (pad !== undefined && !(Number.isInteger(pad) && pad >= 0)) {
    throw new UsageError('BAD_ARGUMENTS', `--pad-token-id must be a non-negative integer token id${padText === '' ? '' : `, got "${padText}"`}`, { subject: '--pad-token-id', hint: 'Example: 50256 (GPT-2\'s <|endoftext|>).' });
  }
  return { tie, force: byTestId<HTMLInputElement>('force').checked, allowNonFinite: byTestId<HTMLInputElement>('allow-nonfinite').checked, ...(follow === 'config' || follow === 'tensors' ? { follow } : {}), ...(pad === undefined ? {} : { padTokenId: pad }) };
}

/** The files of a drop: a dropped directory's top-level files, or the dropped files themselves. */
async function droppedFiles(data: DataTransfer | null): Promise<File[]> {
  if (!data) return [];
  const out: File[] = [];
  for (const item of [...data.items]) {
    const entry = item.webkitGetAsEntry?.();
    if (entry?.isDirectory) {
      const entries = await new Promise<FileSystemEntry[]>((resolve, reject) => (entry as FileSystemDirectoryEntry).createReader().readEntries(resolve, reject));
      for (const e of entries) if (e.isFile) out.push(await new Promise<File>((resolve, reject) => (e as FileSystemFileEntry).file(resolve, reject)));
    } else {
      const f = item.getAsFile();
      if (f) out.push(f);
    }
  }
  return out;
}

const fill = (box: HTMLElement, lines: readonly string[]) => {
  box.replaceChildren(...lines.map((l) => Object.assign(document.createElement('li'), { textContent: l })));
};

let urls: string[] = [];
function offer(link: HTMLAnchorElement, file: Blob, name: string): void {
  const url = URL.createObjectURL(file);
  urls.push(url);
  link.href = url;
  link.download = name;
  link.hidden = false;
}

mergeButton.addEventListener('click', () => {
  void (async () => {
    mergeButton.disabled = true;
    errorBox.textContent = '';
    errorBox.hidden = true;
    for (const u of urls) URL.revokeObjectURL(u);
    urls = [];
    downloadModel.hidden = true;
    downloadConfig.hidden = true;
    downloadCarried.replaceChildren();
    for (const box of [findings, planBox, proofBox]) box.replaceChildren();
    try {
      status.textContent = 'reading the headers';
      const options = chosenOptions();
      const adapters = pickedAdapters();
      const inputs = await openInputs(pickedDir('base', filesOf(baseInput)), adapters.dirs, adapters.weights);
      const result = await mergeInPage(inputs, (text) => (status.textContent = text), nextOutput(), deltaView.begin(), options);
      fill(findings, findingLines([...result.doctorNotes, ...result.plan.findings]));
      fill(planBox, planLines(result.plan));
      fill(proofBox, proofLines(result.proof));
      const { files } = result;
      if (files.directory === undefined) {
        offer(downloadModel, files.model, OUTPUT_WEIGHTS);
        offer(downloadConfig, files.config, OUTPUT_CONFIG);
        for (const c of files.carried) {
          const link = Object.assign(document.createElement('a'), { textContent: `Save ${c.name} ` });
          offer(link, c.file, c.name);
          downloadCarried.append(link);
        }
      }
      const where = files.directory === undefined ? '' : ` into ${files.directory}/`;
      status.textContent = `merged on WebGPU (${result.adapterDescription})${where}; what transformers v4 and v5 load is verified`;
      await deltaView.show().catch((e: unknown) => {
        // The merge stands; only its picture is missing.
        errorBox.hidden = false;
        errorBox.textContent = `the picture of ΔW could not be drawn: ${e instanceof Error ? e.message : String(e)}`;
      });
    } catch (e) {
      deltaView.clear();
      status.textContent = 'failed';
      showError(e);
    } finally {
      mergeButton.disabled = false;
    }
  })();
});
