// OCI / Docker image JSON shapes (only the fields we use) and the domain type.

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface IndexJson {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ManifestJson {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The container-relevant part of an image config (OCI "config" object). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImageConfigJson {
  architecture?: string;
  os?: string;
  created?: string;
  config?: ContainerConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

/** A layer of an image as recorded in the index. */
export interface LayerRecord {
  /** Digest of the blob as stored (compressed or not). */
  digest: string;
  /** Size of the stored blob. */
  size: number;
  mediaType: string;
  /** Digest of the uncompressed tar (from the config's rootfs.diff_ids). */
  diffId: string;
  /** Chain ID: the layer-cache key. */
  chainId: string;
}

/** The domain type the CRI layer sees. */
export interface Image {
  /** "sha256:<config digest hex>" */
  id: string;
  /** Normalised "domain/path:tag" */
  repoTags: string[];
  /** Normalised "domain/path@sha256:<manifest digest>" */
  repoDigests: string[];
  /** Sum of the stored (compressed) layer sizes plus the config size. */
  size: number;
  config: ContainerConfig;
  manifestDigest: string;
  chainIds: string[];
  /** From config.User: numeric user part → uid, otherwise username. */
  uid?: number;
  username?: string;
  os?: string;
  architecture?: string;
}

/** Runtime os/arch in OCI terms. */
export function runtimePlatform(): { os: string; architecture: string; variant?: string } {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  const p = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: archMap[process.arch] ?? process.arch };
  return p;
}
