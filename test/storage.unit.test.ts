import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBackupDir, writeFileAtomic } from '../src/activities/storage';

// writeFileAtomic writes manifests and env files (secrets) into folders other users may be able to write to.
// Whatever is already in the folder (a symlink someone planted at a temp name it could guess) must not be
// followed, and what it writes is 0600 whatever the umask.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'storage-'));
  dirs.push(dir);
  return dir;
}
const modeOf = (p: string): string => (fs.statSync(p).mode & 0o777).toString(8);

test('symlinks planted at the temp names it used to pick are not followed: their targets stay untouched', async () => {
  const dir = scratch();
  const elsewhere = scratch();
  const file = path.join(dir, 'app.env');
  // The old temp name was `.<name>.<pid>.tmp`: an attacker who can write in the folder knows the worker's pid,
  // or plants one for every pid. Plant them for this process and its neighbours.
  const victims: string[] = [];
  for (const pid of [process.pid, process.pid - 1, process.pid + 1, 1]) {
    const victim = path.join(elsewhere, `victim-${pid}`);
    fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
    fs.chmodSync(victim, 0o644);
    fs.symlinkSync(victim, path.join(dir, `.app.env.${pid}.tmp`));
    victims.push(victim);
  }

  await writeFileAtomic(file, 'DB_PASSWORD=s3cret\n', 0o600);
  await writeFileAtomic(file, 'DB_PASSWORD=n3w\n', 0o600); // a second write over the first

  for (const v of victims) expect({ text: fs.readFileSync(v, 'utf8'), mode: modeOf(v) }).toEqual({ text: 'precious\n', mode: '644' });
  const st = fs.lstatSync(file);
  expect({ regularFile: st.isFile(), symlink: st.isSymbolicLink(), mode: modeOf(file), text: fs.readFileSync(file, 'utf8') }).toEqual({
    regularFile: true,
    symlink: false,
    mode: '600',
    text: 'DB_PASSWORD=n3w\n',
  });
  // Nothing else was left in the folder: the planted links are still there, no temp file remains.
  expect(fs.readdirSync(dir).sort()).toEqual(['.app.env.1.tmp', `.app.env.${process.pid - 1}.tmp`, `.app.env.${process.pid + 1}.tmp`, `.app.env.${process.pid}.tmp`, 'app.env'].sort());
});

test('concurrent writes of one file from one process each use their own temp file: all succeed, the file is one of them whole', async () => {
  const dir = scratch();
  const file = path.join(dir, 'x.manifest.json');
  const bodies = Array.from({ length: 20 }, (_, i) => JSON.stringify({ writer: i, pad: String(i).repeat(20_000) }));
  const results = await Promise.allSettled(bodies.map((b) => writeFileAtomic(file, b)));
  expect(results.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).toEqual([]);
  expect(bodies).toContain(fs.readFileSync(file, 'utf8'));
  expect(fs.readdirSync(dir)).toEqual(['x.manifest.json']);
});

test('under umask 000 a manifest is 0600 and a new backup folder (with its missing parents) 0700; an old 0755 folder is tightened', async () => {
  const base = scratch();
  fs.chmodSync(base, 0o751); // a root someone else set up: not this code's to change
  const old = path.join(base, 'old-target');
  fs.mkdirSync(old);
  fs.chmodSync(old, 0o755);
  const umask = process.umask(0o000);
  try {
    await ensureBackupDir(path.join(base, 'root', 'shop'));
    await ensureBackupDir(old);
    await writeFileAtomic(path.join(base, 'root', 'shop', 'm.manifest.json'), '{}');
  } finally {
    process.umask(umask);
  }
  expect({
    root: modeOf(path.join(base, 'root')),
    target: modeOf(path.join(base, 'root', 'shop')),
    old: modeOf(old),
    manifest: modeOf(path.join(base, 'root', 'shop', 'm.manifest.json')),
    base: modeOf(base),
  }).toEqual({ root: '700', target: '700', old: '700', manifest: '600', base: '751' });
});
