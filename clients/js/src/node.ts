// @hallpass/client/node: everything of @hallpass/client, plus FileStorage,
// which keeps a Node program's session and device key in one file.

import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { b64urlEncode } from "./b64.js";
import { ClientCodes, HallpassError } from "./errors.js";
import { generateWebCryptoKey, importPrivateJwk, webCryptoSigner, type Algorithm, type PublicJwk, type Signer } from "./signer.js";
import type { SessionRecord, Storage } from "./storage.js";

export * from "./index.js";

interface FileContent {
  version: 1;
  session: SessionRecord | null;
  key: { alg: Algorithm; privateJwk: JsonWebKey; publicJwk: PublicJwk } | null;
}

/**
 * FileStorage keeps the session and the device key in one JSON file with
 * mode 0600, written atomically (a temporary file, fsync, rename). It
 * refuses a file that others can read or write.
 *
 * Limits: the device key is a software key, stored in clear in the file
 * (exportable): whoever can read the file can act as this device until the
 * session is ended (logout, or revokeDevice from another device). Keep it
 * where only the program's user can read it. One process at a time may use
 * a file: refreshes are single-flight within a client, not across
 * processes.
 */
export class FileStorage implements Storage {
  private readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    if (!path) throw new HallpassError(ClientCodes.invalidArgument, "hallpass: FileStorage needs a path");
    this.path = path;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async read(): Promise<FileContent> {
    let text: string;
    try {
      const st = await stat(this.path);
      if ((st.mode & 0o077) !== 0) {
        throw new HallpassError(ClientCodes.storageError, "hallpass: the state file is readable or writable by others (want mode 0600)");
      }
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, session: null, key: null };
      throw err;
    }
    const v = JSON.parse(text) as FileContent;
    if (!v || v.version !== 1) throw new HallpassError(ClientCodes.storageError, "hallpass: the state file is not a hallpass state file");
    return { version: 1, session: v.session ?? null, key: v.key ?? null };
  }

  private async write(c: FileContent): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const rnd = new Uint8Array(8);
    globalThis.crypto.getRandomValues(rnd);
    const tmp = join(dir, `.${basename(this.path)}.${b64urlEncode(rnd)}.tmp`);
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(c, null, 1) + "\n");
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, this.path);
    try {
      const d = await open(dir, "r");
      await d.sync().finally(() => d.close());
    } catch {
      // Some platforms cannot fsync a directory.
    }
  }

  load(): Promise<SessionRecord | null> {
    return this.serial(async () => (await this.read()).session);
  }

  save(record: SessionRecord | null): Promise<void> {
    return this.serial(async () => {
      const c = await this.read();
      c.session = record;
      await this.write(c);
    });
  }

  deviceKey(create: boolean): Promise<Signer | null> {
    return this.serial(async () => {
      const c = await this.read();
      if (!c.key && create) {
        const k = await generateWebCryptoKey("ES256", true);
        const privateJwk = await globalThis.crypto.subtle.exportKey("jwk", k.privateKey);
        c.key = { alg: k.alg, privateJwk, publicJwk: k.publicJwk };
        await this.write(c);
      }
      if (!c.key) return null;
      return webCryptoSigner(await importPrivateJwk(c.key.alg, c.key.privateJwk, false));
    });
  }

  deleteDeviceKey(): Promise<void> {
    return this.serial(async () => {
      const c = await this.read();
      if (!c.key) return;
      c.key = null;
      await this.write(c);
    });
  }
}
