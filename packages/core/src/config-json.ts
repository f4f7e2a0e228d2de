/** Reading a checkpoint's or an adapter's JSON config file. */
import { InputError } from './errors.js';

/**
 * Parses `text`, the content of the JSON config file `path` (`what`: its kind, for the hint), which
 * must hold one JSON object; throws `InputError` CONFIG_JSON otherwise.
 */
export function parseJsonObject(text: string, path: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError('CONFIG_JSON', `${path} is not valid JSON: ${(e as Error).message}`, { subject: path, hint: `${what} must be the JSON file transformers/PEFT writes.` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError('CONFIG_JSON', `${path} must hold a JSON object`, { subject: path });
  }
  return value as Record<string, unknown>;
}
