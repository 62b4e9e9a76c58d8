// Streaming the per-document entries: written line by line through gzip into the store while
// the copy runs, read back line by line; memory stays flat however large the library.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { ObjectStore } from '../providers/types.ts';
import { IntegrityError } from '../errors/index.ts';
import { validate } from '../../api/v1alpha1/parse.ts';
import { DocumentEntry } from './manifest.ts';

export interface EntriesSummary {
  count: number;
  checksum: string;
}

/** Lines are handed to gzip in batches of about this many characters, not one by one. */
const batchChars = 64 * 1024;

export class EntriesWriter {
  private readonly gzip = createGzip({ level: 6 });
  private readonly hash = createHash('sha256');
  private readonly upload: Promise<unknown>;
  private readonly body = new PassThrough();
  private count = 0;
  private batch = '';
  private draining: Promise<void> | undefined;

  constructor(store: ObjectStore, bucket: string, key: string) {
    const body = this.body;
    this.gzip.on('data', (chunk: Buffer) => this.hash.update(chunk));
    this.gzip.pipe(body);
    this.upload = store.put(bucket, key, body, { contentType: 'application/gzip' });
    // surface an upload failure at close(), not as an unhandled rejection
    this.upload.catch(() => undefined);
  }

  /**
   * Appends one entry. Lines go to gzip in batches (one zlib call per entry cost more CPU than
   * the copy of a small object); when gzip's buffer is full every writer waits for the same
   * 'drain', so a fast copy (many concurrent writers) cannot outrun the upload.
   */
  async write(entry: DocumentEntry): Promise<void> {
    while (this.draining) await this.draining;
    this.count++;
    this.batch += `${JSON.stringify(entry)}\n`;
    if (this.batch.length < batchChars) return;
    const lines = this.batch;
    this.batch = '';
    if (!this.gzip.write(lines)) {
      this.draining = once(this.gzip, 'drain').then(() => {
        this.draining = undefined;
      });
      await this.draining;
    }
  }

  async close(): Promise<EntriesSummary> {
    this.gzip.end(this.batch);
    this.batch = '';
    await this.upload;
    return { count: this.count, checksum: `sha256:${this.hash.digest('hex')}` };
  }

  /** Stops writing after a failure; the caller deletes the partial object. */
  abort(): void {
    this.batch = '';
    this.gzip.unpipe(this.body);
    this.gzip.destroy();
    // failing the body fails the upload (already handled), so no partial entries object is stored
    this.body.destroy(new Error('the backup failed; entries not stored'));
  }
}

/** Reads entries back, checking the stored bytes against the manifest's checksum at the end. */
export async function* readEntries(
  body: Readable,
  expectedChecksum: string,
  where: string,
): AsyncGenerator<DocumentEntry> {
  const hash = createHash('sha256');
  body.on('data', (chunk: Buffer) => hash.update(chunk));
  const lines = createInterface({ input: body.pipe(createGunzip()), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new IntegrityError(`${where}: line ${n} is not JSON`);
    }
    yield validate(DocumentEntry, raw, `${where} line ${n}`);
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== expectedChecksum) {
    throw new IntegrityError(
      `${where}: checksum mismatch (manifest says ${expectedChecksum}, stored bytes hash to ${actual})`,
    );
  }
}
