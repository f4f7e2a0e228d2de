#!/usr/bin/env node
// Regenerates docs/images/merge-app.png, the README's picture of the merge app: serves packages/web
// (built already), opens it in headless Chromium with WebGPU, merges the bundled demo and captures
// the page once it says "verified" and the heatmap of ΔW is drawn.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { CHROMIUM_WEBGPU_ARGS, findChromium } from '@lorafuse/runner';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'docs', 'images', 'merge-app.png');
const server = spawn(process.execPath, [join(root, 'packages/web/scripts/serve.mjs'), '--port', '0', '--no-build'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let text = '';
  server.stdout.on('data', (d) => {
    text += d;
    const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(text);
    if (m) resolve(m[0]);
  });
  server.on('exit', (code) => reject(new Error(`the app server exited (${code})`)));
});
const browser = await puppeteer.launch({ executablePath: findChromium(process.env).path, headless: true, args: [...CHROMIUM_WEBGPU_ARGS, '--use-webgpu-adapter=swiftshader'] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 1400 });
  await page.goto(url);
  const demo = join(root, 'examples', 'demo');
  await (await page.$('[data-testid="base-files"]')).uploadFile(join(demo, 'base', 'config.json'), join(demo, 'base', 'model.safetensors'));
  await (await page.$('[data-testid="adapter-files"]')).uploadFile(join(demo, 'adapter', 'adapter_config.json'), join(demo, 'adapter', 'adapter_model.safetensors'));
  await page.click('[data-testid="merge"]');
  await page.waitForFunction(() => /verified$|error/i.test(document.querySelector('[data-testid="status"]')?.textContent ?? ''), { timeout: 600_000 });
  // The heatmap of ΔW is drawn after the merge is proven, on the next animation frame.
  await page.waitForSelector('[data-testid="delta-view"][data-draws]', { timeout: 60_000 });
  await mkdir(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`wrote ${out}: ${await page.$eval('[data-testid="status"]', (e) => e.textContent)}\n`);
} finally {
  await browser.close();
  server.kill();
}
