/** The input files a command has open, by path, closed together when it ends. */
import { openFileSource, type FileByteSource } from './file-source.js';

/** Opened files, closed together. */
export class OpenFiles {
  private readonly sources = new Map<string, FileByteSource>();

  async open(path: string): Promise<FileByteSource> {
    const existing = this.sources.get(path);
    if (existing) return existing;
    const source = await openFileSource(path);
    this.sources.set(path, source);
    return source;
  }

  get(path: string): FileByteSource {
    const s = this.sources.get(path);
    if (!s) throw new Error(`internal: ${path} was not opened`);
    return s;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.sources.values()].map((s) => s.close()));
    this.sources.clear();
  }
}
