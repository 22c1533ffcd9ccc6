import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { defaultConfig } from '../../src/config.js';

// docs/kubelet.md: every ```yaml block parses, and the KubeletConfiguration
// points at peapod's socket with the cgroupfs driver.

const doc = readFileSync(join(resolve(import.meta.dirname, '../..'), 'docs', 'kubelet.md'), 'utf8');
const blocks = [...doc.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

describe('docs/kubelet.md', () => {
  it('has YAML blocks that all parse', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const text of blocks) {
      for (const d of parseAllDocuments(text)) expect(d.errors, text).toEqual([]);
    }
  });

  it('configures the kubelet for peapod', () => {
    const configs = blocks
      .flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as Record<string, unknown>))
      .filter((o) => o?.kind === 'KubeletConfiguration');
    expect(configs).toHaveLength(1);
    const kc = configs[0]!;
    expect(kc.apiVersion).toBe('kubelet.config.k8s.io/v1beta1');
    expect(kc.containerRuntimeEndpoint).toBe(`unix://${defaultConfig.socket}`);
    expect(kc.imageServiceEndpoint).toBe(`unix://${defaultConfig.socket}`);
    expect(kc.cgroupDriver).toBe('cgroupfs');
    expect(typeof kc.staticPodPath).toBe('string');
  });

  it('gives the same settings as flags', () => {
    const sh = [...doc.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((b) => b.startsWith('kubelet'));
    expect(sh).toBeDefined();
    expect(sh).toContain(`--container-runtime-endpoint=unix://${defaultConfig.socket}`);
    expect(sh).toContain('--cgroup-driver=cgroupfs');
    expect(sh).toContain('--pod-manifest-path=');
  });
});
