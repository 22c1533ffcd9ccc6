// The node's allocatable resources as the kubelet computes them with its
// defaults (no kube-reserved or system-reserved): the capacity, less the hard
// eviction threshold for memory (memory.available<100Mi). A container
// without a limit is limited by these (downward API, memory emptyDirs).

import { cpus, totalmem } from 'node:os';

/** The kubelet's default evictionHard memory.available. */
export const EVICTION_HARD_MEMORY = 100 * 2 ** 20;

export interface Allocatable {
  cpu: number;
  /** Bytes. */
  memory: number;
}

export function nodeAllocatable(memoryCapacity = totalmem(), cpuCapacity = cpus().length): Allocatable {
  return { cpu: cpuCapacity, memory: Math.max(0, memoryCapacity - EVICTION_HARD_MEMORY) };
}
