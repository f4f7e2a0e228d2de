/**
 * The app-facing weight kernels of `@lorafuse/kernels` on Dawn in Node (SwiftShader where there is
 * no GPU): the same checks as in Chromium, so an app embedding them under Node sees the same bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeightChecks } from '@lorafuse/kernels/testing';
import { startDawnDevice, type DawnDevice } from './device.js';

let dawn: DawnDevice;
beforeAll(async () => {
  dawn = await startDawnDevice(process.env, '');
}, 120_000);
afterAll(() => dawn?.destroy());

describe('weight kernels on Dawn', () => {
  it('merge, unmerge, swap, rebuild, DoRA and inspect agree with their CPU twins; bad bindings are refused by code', async () => {
    const results = await runWeightChecks(dawn.device);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => /Dora/.test(r.name)).length).toBeGreaterThan(10);
    expect(results.filter((r) => r.violations > 0).map((r) => `${r.name}: ${r.violations}/${r.elements} off, max ${r.maxAbs}`)).toEqual([]);
  }, 120_000);
});
