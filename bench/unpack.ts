// Layer unpack benchmark (prints figures; not a test).
//
//   npx vite-node bench/unpack.ts [SRC_DIR ...]     (default: /usr/include; ROUNDS=3)
//
// Tars SRC_DIR (≥ 100 MB recommended) with GNU tar, gzips it, then unpacks the
// plain and the gzipped layer with peapod's unpackLayer and with GNU `tar -x`
// in the same run, and prints wall times, the ratio and peapod's RSS growth.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { unpackLayer } from '../src/image/unpack.js';

const srcs = process.argv.slice(2).length ? process.argv.slice(2) : ['/usr/include'];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'peapod-bench-'));
const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

async function main(): Promise<void> {
  const plain = path.join(work, 'layer.tar');
  const gz = path.join(work, 'layer.tar.gz');
  execFileSync('tar', ['-cf', plain, '-C', '/', ...srcs.map((s) => path.relative('/', s))]);
  await pipeline(fs.createReadStream(plain), zlib.createGzip({ level: 6 }), fs.createWriteStream(gz));
  const entries = Number(execFileSync('sh', ['-c', `tar -tf ${plain} | wc -l`], { encoding: 'utf8' }).trim());
  console.log(`layer: ${srcs.join(' ')}: ${mb(fs.statSync(plain).size)} tar, ${mb(fs.statSync(gz).size)} gzip, ${entries} entries`);

  const rounds = Number(process.env.ROUNDS ?? 3);
  for (const [label, file, tarFlag] of [
    ['plain', plain, '-xf'],
    ['gzip ', gz, '-xzf'],
  ] as const) {
    const gnu: number[] = [];
    const ours: number[] = [];
    let rssGrowth = 0;
    // Alternate the two so filesystem noise (writeback, discard) hits both alike.
    for (let i = 0; i < rounds; i++) {
      const d1 = path.join(work, 'gnu');
      fs.mkdirSync(d1);
      const t0 = process.hrtime.bigint();
      const r = spawnSync('tar', [tarFlag, file, '-C', d1, '--same-owner', '-p']);
      gnu.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
      fs.rmSync(d1, { recursive: true });
      execFileSync('sync');

      const d2 = path.join(work, 'peapod');
      fs.mkdirSync(d2);
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const t1 = process.hrtime.bigint();
      await unpackLayer(fs.createReadStream(file, { highWaterMark: 1 << 20 }), d2, { label });
      ours.push(Number(process.hrtime.bigint() - t1) / 1e6);
      clearInterval(timer);
      rssGrowth = Math.max(rssGrowth, Math.max(peak, process.memoryUsage().rss) - rss0);
      fs.rmSync(d2, { recursive: true });
      execFileSync('sync');
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    console.log(
      `${label}: GNU tar median ${med(gnu).toFixed(0)} ms [${gnu.map((x) => x.toFixed(0)).join(', ')}] | ` +
        `peapod median ${med(ours).toFixed(0)} ms [${ours.map((x) => x.toFixed(0)).join(', ')}] | ` +
        `ratio ${(med(ours) / med(gnu)).toFixed(2)}x | peapod RSS growth ≤ ${mb(rssGrowth)}`,
    );
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));
