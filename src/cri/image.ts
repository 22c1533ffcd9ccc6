import type { ServerUnaryCall } from '@grpc/grpc-js';
import { invalidArgument } from '../errors.js';
import type { Image } from '../image/types.js';
import type { ImageService } from '../image/service.js';
import { tryParseReference } from '../image/reference.js';
import { pullImage, type RegistryConfig } from '../image/registry.js';
import type { Logger } from '../log.js';
import { type Implementation, untilCancelled, writeEach } from './handlers.js';

/** An image reference or id as a client sends it: short, printable, and parseable as one or the other. */
function checkImageRef(ref: string): void {
  if (ref.length > 4096) throw invalidArgument(`image.image is longer than 4096 characters`);
  if (/[\x00-\x20\x7f]/.test(ref)) throw invalidArgument(`image.image "${ref.slice(0, 80)}" contains a control character or white space`);
  if (!/^(sha256:)?[0-9a-f]{1,64}$/.test(ref) && !tryParseReference(ref)) throw invalidArgument(`image.image "${ref.slice(0, 80)}" is not an image reference or id`);
}

function imageOut(img: Image) {
  return {
    id: img.id,
    repoTags: img.repoTags,
    repoDigests: img.repoDigests,
    size: String(img.size),
    uid: img.uid !== undefined ? { value: String(img.uid) } : null,
    username: img.username ?? '',
    spec: { image: img.id },
    pinned: false,
  };
}

export function imageHandlers(images: ImageService, registry: () => RegistryConfig, log: Logger): Implementation {
  return {
    async PullImage(req, call?: ServerUnaryCall<unknown, unknown>) {
      const ref = req.image?.image;
      if (!ref) throw invalidArgument('image.image is required');
      checkImageRef(ref);
      const a = req.auth;
      const auth = a && {
        username: a.username || undefined,
        password: a.password || undefined,
        auth: a.auth || undefined,
        identityToken: a.identityToken || undefined,
        registryToken: a.registryToken || undefined,
        serverAddress: a.serverAddress || undefined,
      };
      // A client that gives up (cancel, deadline) stops the pull: nothing of it is kept.
      const img = await untilCancelled(call, (signal) =>
        pullImage(images, ref, { config: registry(), auth, log: (level, msg, fields) => log[level](msg, fields), signal }),
      );
      return { imageRef: img.id };
    },
    async ListImages(req) {
      return { images: images.list(req.filter?.image?.image || undefined).map(imageOut) };
    },
    async StreamImages(req, call) {
      await writeEach(call, images.list(req.filter?.image?.image || undefined), (img) => ({ images: [imageOut(img)] }));
    },
    async ImageStatus(req) {
      const ref = req.image?.image;
      if (!ref) throw invalidArgument('image.image is required');
      checkImageRef(ref);
      const img = images.resolve(ref);
      // A missing image is not an error: clients read an empty answer as "pull needed".
      if (!img) return { image: null, info: {} };
      if (!req.verbose) return { image: imageOut(img), info: {} };
      const imageSpec = await images.imageConfig(img.id);
      if (!imageSpec) return { image: null, info: {} };
      // containerd's keys (chainID: the top layer's, "" without layers), and
      // the containers holding the image.
      const info = { chainID: img.chainIds.at(-1) ?? '', imageSpec, usedBy: images.usedBy(img.id) };
      return { image: imageOut(img), info: { info: JSON.stringify(info) } };
    },
    async RemoveImage(req) {
      const ref = req.image?.image;
      if (!ref) throw invalidArgument('image.image is required');
      checkImageRef(ref);
      await images.remove(ref);
      return {};
    },
    async ImageFsInfo() {
      const fs = await images.fsInfo();
      const usage = {
        timestamp: fs.timestampNs.toString(),
        fsId: { mountpoint: fs.mountpoint },
        usedBytes: { value: String(fs.usedBytes) },
        inodesUsed: { value: String(fs.inodesUsed) },
      };
      return { imageFilesystems: [usage], containerFilesystems: [] };
    },
  };
}
