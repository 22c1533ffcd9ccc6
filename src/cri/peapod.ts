// peapod's own gRPC service (proto/peapod.proto, package peapod.v1), served
// beside CRI on the same socket. The kubelet never calls it; the CLI does.

import { invalidArgument } from '../errors.js';
import type { Image } from '../image/types.js';
import type { ImageService } from '../image/service.js';
import type { LoadImagesChunk__Output } from './generated/peapod/v1/LoadImagesChunk.js';
import type { LoadedImage } from './generated/peapod/v1/LoadedImage.js';
import type { LoadImagesResponse } from './generated/peapod/v1/LoadImagesResponse.js';
import type { Implementation } from './handlers.js';

function loadedImage(img: Image): LoadedImage {
  return { id: img.id, repoTags: img.repoTags, repoDigests: img.repoDigests, size: String(img.size) };
}

/**
 * The archive bytes of a LoadImages call, chunk by chunk. Pulls one message
 * whenever the importer asks for more bytes, so the client is held back by
 * HTTP/2 flow control while the importer is busy (or waits for an earlier
 * import): at most a few chunks are ever buffered.
 */
async function* archiveBytes(
  first: LoadImagesChunk__Output,
  rest: AsyncIterator<LoadImagesChunk__Output>,
): AsyncGenerator<Uint8Array> {
  if (first.data.length > 0) yield first.data;
  for (;;) {
    let next: IteratorResult<LoadImagesChunk__Output>;
    try {
      next = await rest.next();
    } catch (err) {
      // grpc-js destroys the request stream when the client cancels or goes away.
      const e = invalidArgument('archive truncated: the client cancelled the load before its end');
      e.cause = err;
      throw e;
    }
    if (next.done) return;
    if (next.value.data.length > 0) yield next.value.data;
  }
}

export function peapodHandlers(images: ImageService): Implementation {
  return {
    /** Client streaming: LoadImagesChunk* → LoadImagesResponse. */
    async LoadImages(requests: AsyncIterable<LoadImagesChunk__Output>): Promise<LoadImagesResponse> {
      const it = requests[Symbol.asyncIterator]();
      try {
        const first = await it.next();
        if (first.done) throw invalidArgument('LoadImages: no archive data was sent');
        const name = first.value.name.trim() || undefined;
        const loaded = await images.import(archiveBytes(first.value, it), name !== undefined ? { name } : {});
        return { images: loaded.map(loadedImage) };
      } finally {
        // Stop reading if the import ended early (a corrupt archive, say). Not
        // awaited: a read may still be pending, and it only settles once the
        // status is sent (grpc-js then destroys the request stream).
        it.return?.().catch(() => {});
      }
    },
  };
}
