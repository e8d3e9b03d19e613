/**
 * Builds the guest image: the distro kernel from /boot plus an initramfs
 * with busybox-static, the virtio NIC modules, our /init and the static
 * workload programs. Cached under cacheDir('images', <hash>) by a hash of
 * everything that goes in, so a second build is a lookup.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { UserError } from '../util/errors.ts';
import { compileC } from '../util/compile.ts';
import { cacheDir, PACKAGE_ROOT } from '../util/paths.ts';
import { writeCpio, type CpioEntry } from './cpio.ts';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** Content hash of everything in the image (kernel, modules, busybox, init, workloads). */
  hash: string;
  kernelVersion: string;
}

/** A static program copied into the guest as /bin/<name>. */
export interface GuestProgram {
  name: string;
  sources: string[];
  /** Headers it includes (hashed, not compiled). */
  headers?: string[];
}

export interface BuildGuestImageOptions {
  /** Kernel to boot; default: newest /boot/vmlinuz-*. */
  kernel?: string;
  /** Where /lib/modules/<version> lives (default /lib/modules). */
  modulesRoot?: string;
  /** busybox binary; default: busybox on PATH (must be statically linked). */
  busybox?: string;
  /** Workload programs; default: mb-dirty. */
  programs?: GuestProgram[];
}

/** virtio_net and what it depends on, in load order (otherwise no NIC appears). */
export const NIC_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  // the optional disk (vms[].disk, /dev/vda); needs only virtio + virtio_ring
  'virtio_blk',
  'failover',
  'net_failover',
  'virtio_net',
] as const;

/** zram (and its allocator), loaded by /init only when a workload asks for swap. */
export const SWAP_MODULES = ['zsmalloc', 'zram'] as const;

const workloadSource = (dir: string, file: string) => join(PACKAGE_ROOT, 'workloads', dir, file);
const COMMON = [workloadSource('common', 'mbargs.h')];
export const DEFAULT_PROGRAMS: GuestProgram[] = [
  { name: 'mb-dirty', sources: [workloadSource('dirty', 'dirty.c')], headers: COMMON },
  { name: 'mb-cpu', sources: [workloadSource('cpuload', 'cpuload.c')], headers: COMMON },
  { name: 'mb-stress', sources: [workloadSource('memstress', 'memstress.c')], headers: COMMON },
  { name: 'mb-mempressure', sources: [workloadSource('mempressure', 'mempressure.c')], headers: COMMON },
  { name: 'mb-trace', sources: [workloadSource('tracer', 'tracer.c')], headers: COMMON },
];

const GUEST_DIR = join(PACKAGE_ROOT, 'workloads', 'guest');
const HERE = dirname(fileURLToPath(import.meta.url));

/** Compares kernel versions like 6.1.0-56-amd64 numerically, part by part. */
export function compareKernelVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Newest /boot/vmlinuz-* and its version. */
export function findKernel(bootDir = '/boot'): { path: string; version: string } {
  const names = existsSync(bootDir) ? readdirSync(bootDir).filter((n) => /^vmlinuz-.+/.test(n)) : [];
  if (names.length === 0) {
    throw new UserError(`no guest kernel found (no ${bootDir}/vmlinuz-*); install one with: apt-get install linux-image-amd64`);
  }
  const versions = names.map((n) => n.slice('vmlinuz-'.length)).sort(compareKernelVersions);
  const version = versions[versions.length - 1];
  return { path: join(bootDir, `vmlinuz-${version}`), version };
}

/**
 * Module name -> path (relative to the modules dir) from modules.dep. Names
 * are normalised to underscores, as the kernel does.
 */
export function parseModulesDep(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const path = line.split(':', 1)[0].trim();
    if (!path) continue;
    const base = path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
    m.set(base.replace(/-/g, '_'), path);
  }
  return m;
}

async function readModule(path: string): Promise<Buffer> {
  if (path.endsWith('.ko')) return readFileSync(path);
  if (path.endsWith('.gz')) return gunzipSync(readFileSync(path));
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : null;
  if (!tool) throw new Error(`unknown module compression: ${path}`);
  const r = await execa(tool, ['-dc', path], { encoding: 'buffer', reject: false });
  if ((r as { code?: string }).code === 'ENOENT') {
    throw new UserError(
      `required program '${tool}' was not found on PATH; install it with: apt-get install ${tool === 'xz' ? 'xz-utils' : 'zstd'}`,
    );
  }
  if (r.exitCode !== 0) throw new Error(`${tool} -dc ${path} failed: ${Buffer.from(r.stderr).toString()}`);
  return Buffer.from(r.stdout);
}

/** True when the ELF file has no PT_INTERP segment (i.e. is statically linked). */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false; // ELF64 only
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

async function findBusybox(explicit?: string): Promise<string> {
  const candidates = explicit ? [explicit] : ['/bin/busybox', '/usr/bin/busybox'];
  const path = candidates.find((p) => existsSync(p));
  if (!path) throw new UserError('busybox not found; install it with: apt-get install busybox-static');
  if (!isStaticElf(readFileSync(path))) {
    throw new UserError(
      `${path} is dynamically linked and cannot run in the guest; install the static one with: apt-get install busybox-static`,
    );
  }
  return path;
}

function readKernel(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === 'EACCES') {
      throw new UserError(`cannot read guest kernel ${path} (Debian installs it mode 0600): run as root`);
    }
    throw e;
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

interface Inputs {
  kernel: { path: string; version: string; data: Buffer };
  modules: { name: string; path: string }[];
  swapModules: { name: string; path: string }[];
  busybox: { path: string; data: Buffer; applets: string[] };
  init: Buffer;
  www: { rel: string; data: Buffer }[];
  programs: GuestProgram[];
}

async function gatherInputs(opts: BuildGuestImageOptions): Promise<Inputs> {
  const k = opts.kernel ? { path: opts.kernel, version: opts.kernel.replace(/^.*vmlinuz-/, '') } : findKernel();
  const modDir = join(opts.modulesRoot ?? '/lib/modules', k.version);
  const depFile = join(modDir, 'modules.dep');
  if (!existsSync(depFile)) {
    throw new UserError(`kernel modules for ${k.version} not found (${depFile}); install them with: apt-get install linux-image-amd64`);
  }
  const dep = parseModulesDep(readFileSync(depFile, 'utf8'));
  // Modules absent from modules.dep are built in (or absent): skip them.
  const modules = NIC_MODULES.filter((n) => dep.has(n)).map((n) => ({ name: n, path: join(modDir, dep.get(n)!) }));
  const swapModules = SWAP_MODULES.filter((n) => dep.has(n)).map((n) => ({ name: n, path: join(modDir, dep.get(n)!) }));

  const bbPath = await findBusybox(opts.busybox);
  const list = await execa(bbPath, ['--list-full'], { reject: false });
  if (list.exitCode !== 0) throw new UserError(`${bbPath} --list-full failed; install busybox-static`);
  const applets = String(list.stdout)
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);

  const wwwDir = join(GUEST_DIR, 'www');
  const www = existsSync(wwwDir) ? listFiles(wwwDir).map((p) => ({ rel: relative(wwwDir, p), data: readFileSync(p) })) : [];
  return {
    kernel: { ...k, data: readKernel(k.path) },
    modules,
    swapModules,
    busybox: { path: bbPath, data: readFileSync(bbPath), applets },
    init: readFileSync(join(GUEST_DIR, 'init')),
    www,
    programs: opts.programs ?? DEFAULT_PROGRAMS,
  };
}

function hashInputs(inp: Inputs): string {
  const h = createHash('sha256');
  const part = (label: string, data: Buffer | string) => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  // The builder's own code shapes the image too.
  part('builder', readFileSync(join(HERE, 'build.ts')));
  part('cpio', readFileSync(join(HERE, 'cpio.ts')));
  part('kernel', inp.kernel.data);
  for (const m of inp.modules) part(`module:${m.name}`, readFileSync(m.path));
  for (const m of inp.swapModules) part(`swap-module:${m.name}`, readFileSync(m.path));
  part('busybox', inp.busybox.data);
  part('applets', inp.busybox.applets.join('\n'));
  part('init', inp.init);
  for (const f of inp.www) part(`www:${f.rel}`, f.data);
  for (const p of inp.programs) for (const s of [...p.sources, ...(p.headers ?? [])]) part(`prog:${p.name}:${s}`, readFileSync(s));
  return h.digest('hex').slice(0, 16);
}

async function initramfsEntries(inp: Inputs): Promise<CpioEntry[]> {
  const dirs = new Set([
    'bin',
    'sbin',
    'usr',
    'usr/bin',
    'usr/sbin',
    'dev',
    'proc',
    'sys',
    'run',
    'tmp',
    'etc',
    'root',
    'lib',
    'lib/modules',
    'lib/modules/mb',
    'www',
    'www/cgi-bin',
  ]);
  for (const a of inp.busybox.applets) {
    for (let d = dirname(a); d !== '.' && d !== '/'; d = dirname(d)) dirs.add(d);
  }
  for (const f of inp.www) for (let d = dirname(join('www', f.rel)); d !== '.'; d = dirname(d)) dirs.add(d);
  const e: CpioEntry[] = [...dirs].sort().map((path) => ({ kind: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 }));
  e.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  e.push({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  e.push({ kind: 'file', path: 'init', data: inp.init, mode: 0o755 });
  e.push({ kind: 'file', path: 'bin/busybox', data: inp.busybox.data, mode: 0o755 });
  for (const a of inp.busybox.applets) {
    if (a !== 'bin/busybox') e.push({ kind: 'symlink', path: a, target: '/bin/busybox' });
  }
  e.push({ kind: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') });
  e.push({ kind: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\n') });
  for (const f of inp.www) {
    const exec = f.rel.startsWith('cgi-bin/');
    e.push({ kind: 'file', path: join('www', f.rel), data: f.data, mode: exec ? 0o755 : 0o644 });
  }
  for (const m of inp.modules) e.push({ kind: 'file', path: `lib/modules/mb/${m.name}.ko`, data: await readModule(m.path) });
  e.push({ kind: 'file', path: 'lib/modules/mb/order', data: Buffer.from(inp.modules.map((m) => `${m.name}\n`).join('')) });
  for (const m of inp.swapModules) e.push({ kind: 'file', path: `lib/modules/mb/${m.name}.ko`, data: await readModule(m.path) });
  e.push({ kind: 'file', path: 'lib/modules/mb/swap-order', data: Buffer.from(inp.swapModules.map((m) => `${m.name}\n`).join('')) });
  for (const p of inp.programs) {
    const bin = await compileC({ name: p.name, sources: p.sources, headers: p.headers, static: true });
    e.push({ kind: 'file', path: `bin/${p.name}`, data: readFileSync(bin), mode: 0o755 });
  }
  return e;
}

function readCached(dir: string): GuestImage | null {
  const meta = join(dir, 'image.json');
  if (!existsSync(meta)) return null;
  const img = JSON.parse(readFileSync(meta, 'utf8')) as GuestImage;
  // Paths are recomputed so a moved cache directory still works.
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), hash: img.hash, kernelVersion: img.kernelVersion };
}

/** Builds (or finds in the cache) the guest kernel + initramfs. */
export async function buildGuestImage(opts: BuildGuestImageOptions = {}): Promise<GuestImage> {
  const inp = await gatherInputs(opts);
  const hash = hashInputs(inp);
  const root = cacheDir('images');
  const final = join(root, hash);
  const cached = readCached(final);
  if (cached) return cached;

  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.tmp-${hash}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const initrd = gzipSync(writeCpio(await initramfsEntries(inp)), { level: 6 });
    writeFileSync(join(tmp, 'initrd.img'), initrd);
    copyFileSync(inp.kernel.path, join(tmp, 'vmlinuz'));
    const img: GuestImage = { kernel: join(final, 'vmlinuz'), initrd: join(final, 'initrd.img'), hash, kernelVersion: inp.kernel.version };
    writeFileSync(
      join(tmp, 'image.json'),
      JSON.stringify({ ...img, modules: inp.modules.map((m) => m.name), builtAt: new Date().toISOString() }, null, 2),
    );
    try {
      renameSync(tmp, final); // atomic: readers see a complete image or none
    } catch (e) {
      const code = (e as { code?: string }).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(join(final, 'image.json'))) {
        rmSync(tmp, { recursive: true, force: true }); // a concurrent build won
      } else throw e;
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const img = readCached(final);
  if (!img) throw new Error(`guest image ${final} missing after build`);
  if (statSync(img.initrd).size === 0) throw new Error(`guest image ${img.initrd} is empty`);
  return img;
}
