/**
 * The page's output choice: a directory picked with the "choose output" button (where the browser
 * has the File System Access API), or else downloads. Each merge gets a fresh {@link MergeOutput}.
 */
import { canChooseDirectory, chooseDirectory, directoryOutput } from './directory-output.js';
import { downloadOutput } from './download-output.js';
import type { MergeOutput } from './merge-output.js';

/** What the output line says when no directory was chosen. */
const DOWNLOADS = 'downloads (offered once the merge is proven)';

/**
 * Wires `button` (shown only where a directory can be chosen) and `shown` (the current choice);
 * `onError` gets a picker failure. Returns the output for the next merge.
 */
export function wireOutputChoice(button: HTMLButtonElement, shown: HTMLElement, onError: (e: unknown) => void): () => MergeOutput {
  let dir: FileSystemDirectoryHandle | undefined;
  shown.textContent = DOWNLOADS;
  if (canChooseDirectory()) {
    button.hidden = false;
    button.addEventListener('click', () => {
      chooseDirectory().then((picked) => {
        if (!picked) return;
        dir = picked;
        shown.textContent = `the directory ${picked.name} (model.safetensors and config.json written there as they are made)`;
      }, onError);
    });
  }
  return () => (dir ? directoryOutput(dir) : downloadOutput());
}
