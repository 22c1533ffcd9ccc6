export interface NetworkStatus {
  ready: boolean;
  message: string;
}

/**
 * Pod networking as the runtime reports it to the kubelet. CNI is not wired
 * in yet: every pod gets its own network namespace with only loopback, so
 * the network is honestly reported as not ready.
 */
export function networkStatus(): NetworkStatus {
  return {
    ready: false,
    message: 'CNI pod networking is not implemented yet: pod network namespaces have loopback only',
  };
}
