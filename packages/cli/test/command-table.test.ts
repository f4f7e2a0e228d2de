import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { commands, runCli } from '../src/main.js';
import type { Io } from '../src/output.js';

function capture(): { io: Io; out: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { io: { stdout: sink, stderr: sink }, out: () => text };
}

describe('the command table', () => {
  it('lists every command with its summary, and each loads a command whose --help is its own', async () => {
    const top = capture();
    expect(await runCli(['--help'], top.io)).toBe(0);
    for (const entry of commands) {
      expect(top.out()).toContain(`  ${entry.name}`);
      expect(top.out()).toContain(entry.summary);
      const command = await entry.load();
      expect(command.help).toMatch(new RegExp(`lorafuse ${entry.name}\\b`));
      const help = capture();
      expect(await runCli([entry.name, '--help'], help.io)).toBe(0);
      expect(help.out()).toBe(command.help);
    }
    expect(commands.map((c) => c.name)).toEqual(['merge', 'verify', 'diff', 'doctor', 'inspect', 'logits', 'generate', 'env']);
  });

  it('an unknown command is a usage error that lists the commands', async () => {
    const c = capture();
    expect(await runCli(['mrege'], c.io)).toBe(2);
    expect(c.out()).toMatch(/unknown command "mrege"[\s\S]*Commands:/);
  });
});
