/** `lorafuse env`'s look at Dawn: the adapter `--device dawn` would use, or why there is none. */
import { startDawnDevice } from './device.js';

/** What {@link probeDawn} found. */
export type DawnProbe = { readonly adapter: string } | { readonly unavailable: string };

/** Starts Dawn, notes its adapter and releases the device again; never throws. */
export async function probeDawn(env: Record<string, string | undefined> = process.env): Promise<DawnProbe> {
  try {
    const dawn = await startDawnDevice(env, '');
    dawn.destroy();
    return { adapter: dawn.description };
  } catch (e) {
    return { unavailable: (e as Error).message };
  }
}
