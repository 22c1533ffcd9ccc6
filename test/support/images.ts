import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../src/image/service.js';
import { repoRoot } from './server.js';

export const BUSYBOX = 'docker.io/library/busybox:latest';

/** A CRI ContainerConfig of busybox sleeping 300 s; `extra` adds or overrides fields (linux, logPath…). */
export const sleeper = (name: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name },
  image: { image: BUSYBOX },
  command: ['sleep', '300'],
  ...extra,
});
export const busyboxTar = join(repoRoot, 'images', 'build', 'busybox.tar');

/** Builds the offline test images once (native/ first: the pause image needs it). */
export function ensureTestImages(): void {
  if (existsSync(busyboxTar)) return;
  execFileSync('make', ['-s', '-C', join(repoRoot, 'native')], { stdio: 'inherit' });
  execFileSync(process.execPath, [join(repoRoot, 'images', 'build.mjs')], { stdio: 'inherit' });
}

/** Imports the busybox test image into a server root before the server starts. */
export async function preloadBusybox(root: string): Promise<void> {
  ensureTestImages();
  const images = await ImageService.open({ root: join(root, 'images') });
  await images.import(createReadStream(busyboxTar));
}
