// Hostile image metadata: random JSON-ish manifests, indexes and configs,
// through the registry path (commitManifest), the archive path (import of an
// OCI layout or docker-archive whose JSON files are random), and the platform
// and reference parsers. Each must give a typed error or a result, never a
// crash, and leave the image service usable.
import fc from 'fast-check';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeapodError } from '../../src/errors.js';
import { pickPlatform } from '../../src/image/archive.js';
import { parseReference } from '../../src/image/reference.js';
import { selectPlatform } from '../../src/image/registry.js';
import { ImageService } from '../../src/image/service.js';
import { buildImage, sha } from '../support/image-archive.js';
import { fuzzParams, fuzzTimeout, typedOnly, withinMs } from '../support/fuzz.js';
import { chunks, makeTar, tmpDir, type TarEntry } from '../support/image-tar.js';

let root: string;
let images: ImageService;
beforeAll(async () => {
  root = tmpDir('peapod-fuzz-json-');
  images = await ImageService.open({ root });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const layer = () => makeTar([{ name: 'hello', content: 'world' }]);

/** Any JSON value, plus values of the right shape with fields of the wrong types. */
const anyJson = fc.jsonValue({ maxDepth: 4 });
const digestish = fc.oneof(
  fc.constant('sha256:' + 'a'.repeat(64)),
  fc.string({ maxLength: 80 }),
  fc.constantFrom('sha256:', 'sha512:' + 'b'.repeat(128), 'sha256:../../etc/passwd', 'sha256:' + 'A'.repeat(64)),
  fc.integer(),
  fc.constant(null),
);
const descriptor = fc.record(
  {
    mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'), anyJson),
    digest: digestish,
    size: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.string(), fc.constant(null)),
    platform: fc.oneof(fc.record({ os: fc.oneof(fc.constant('linux'), anyJson), architecture: fc.oneof(fc.constant('amd64'), anyJson) }), anyJson),
    annotations: fc.oneof(fc.dictionary(fc.string(), fc.string()), anyJson),
  },
  { requiredKeys: [] },
);
const manifestish = fc.record(
  {
    schemaVersion: fc.oneof(fc.constant(2), anyJson),
    mediaType: anyJson,
    config: fc.oneof(descriptor, anyJson),
    layers: fc.oneof(fc.array(fc.oneof(descriptor, anyJson), { maxLength: 3 }), anyJson),
    manifests: fc.oneof(fc.array(fc.oneof(descriptor, anyJson), { maxLength: 3 }), anyJson),
  },
  { requiredKeys: [] },
);
const configish = fc.record(
  {
    architecture: anyJson,
    os: anyJson,
    config: fc.oneof(fc.record({ User: anyJson, Env: anyJson, Cmd: anyJson, Entrypoint: anyJson, StopSignal: anyJson }, { requiredKeys: [] }), anyJson),
    rootfs: fc.oneof(fc.record({ type: anyJson, diff_ids: fc.oneof(fc.array(digestish, { maxLength: 3 }), anyJson) }, { requiredKeys: [] }), anyJson),
  },
  { requiredKeys: [] },
);
const jsonBytes = (arb: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 4, arbitrary: arb.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
  );

async function expectUsable(): Promise<void> {
  expect(Array.isArray(images.list())).toBe(true);
}

describe('fuzz: image manifests, indexes and configs', () => {
  it(
    'commitManifest (registry path) answers random manifests with a typed error or an image',
    async () => {
      // A real config and layer in the store, so that some random manifests reach deeper checks.
      const img = buildImage([await layer()]);
      for (const [d, b] of img.blobs) if (d !== img.manifestDigest) await images.ingestBlob(d, b.length, chunks(b));
      const cfgDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.configDigest, size: img.config.length };
      const real = fc.constantFrom(cfgDesc, { ...cfgDesc, size: 1 }, { digest: img.configDigest });
      const arb = fc.oneof(
        jsonBytes(manifestish),
        manifestish.chain((m) => real.map((c) => Buffer.from(JSON.stringify({ ...m, config: c })))),
      );
      await fc.assert(
        fc.asyncProperty(arb, async (bytes) => {
          const res = await withinMs(typedOnly(() => images.commitManifest(bytes, undefined)), 10_000, 'commitManifest');
          if (!(res instanceof PeapodError)) expect(res.id).toMatch(/^sha256:/);
          await expectUsable();
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'import of an OCI layout with random index.json, manifest and config',
    async () => {
      const tarLayer = await layer();
      await fc.assert(
        fc.asyncProperty(jsonBytes(manifestish), jsonBytes(manifestish), jsonBytes(configish), fc.boolean(), async (index, manifest, config, withLayout) => {
          const blobs = new Map<string, Buffer>([
            [sha(manifest), manifest],
            [sha(config), config],
            [sha(tarLayer), tarLayer],
          ]);
          // Point the random index and manifest at the blobs, where they are objects.
          const patch = (b: Buffer, f: (o: Record<string, unknown>) => void) => {
            try {
              const o = JSON.parse(b.toString());
              if (o && typeof o === 'object' && !Array.isArray(o)) {
                f(o);
                return Buffer.from(JSON.stringify(o));
              }
            } catch {
              // not JSON: keep it as it is
            }
            return b;
          };
          const idx = patch(index, (o) => {
            if (Array.isArray(o.manifests)) o.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length });
          });
          const entries: TarEntry[] = [{ name: 'index.json', content: idx }];
          if (withLayout) entries.push({ name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' });
          for (const [d, b] of blobs) entries.push({ name: `blobs/sha256/${d.slice(7)}`, content: b });
          const tar = await makeTar(entries);
          const out = await withinMs(typedOnly(() => images.import(chunks(tar, 1000))), 10_000, 'import');
          if (!(out instanceof PeapodError)) expect(Array.isArray(out)).toBe(true);
          await expectUsable();
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'import of a docker-archive with a random manifest.json and config',
    async () => {
      const tarLayer = await layer();
      const dockerManifest = fc.oneof(
        anyJson,
        fc.array(
          fc.record(
            { Config: fc.oneof(fc.constant('config.json'), anyJson), RepoTags: fc.oneof(fc.array(fc.string({ maxLength: 40 }), { maxLength: 2 }), anyJson), Layers: fc.oneof(fc.constant(['layer.tar']), anyJson) },
            { requiredKeys: [] },
          ),
          { maxLength: 2 },
        ),
      );
      await fc.assert(
        fc.asyncProperty(jsonBytes(dockerManifest), jsonBytes(configish), async (manifest, config) => {
          const tar = await makeTar([
            { name: 'config.json', content: config },
            { name: 'layer.tar', content: tarLayer },
            { name: 'manifest.json', content: manifest },
          ]);
          const out = await withinMs(typedOnly(() => images.import(chunks(tar, 700))), 10_000, 'import');
          if (!(out instanceof PeapodError)) expect(Array.isArray(out)).toBe(true);
          await expectUsable();
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it('platform selection and reference parsing take any input', async () => {
    await fc.assert(
      fc.asyncProperty(manifestish, fc.string({ maxLength: 300 }), async (index, ref) => {
        await typedOnly(() => pickPlatform(index as never, 'index'));
        await typedOnly(() => selectPlatform(index as never));
        await typedOnly(() => parseReference(ref));
      }),
      fuzzParams(),
    );
  });
});
