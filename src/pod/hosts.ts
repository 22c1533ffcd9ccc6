// The pod's hostname and its /etc/hosts as the kubelet makes them
// (pkg/kubelet/kubelet_pods.go: GeneratePodHostNameAndDomain,
// managedHostsFileContent, nodeHostsFileContent). Like the kubelet, the pod
// runner bind-mounts its own file over the runtime's, so the hosts file of a
// pod made by a CRI client stays as it was.

import type { PodSpec } from './types.js';

const HOSTNAME_MAX = 63;

/** The pod's hostname (spec.hostname, else its name, cut to 63 characters) and, with a subdomain, its domain. */
export function podHostname(p: PodSpec, clusterDomain: string): { hostname: string; domain: string } {
  let hostname = p.hostname || p.name;
  if (hostname.length > HOSTNAME_MAX) hostname = hostname.slice(0, HOSTNAME_MAX).replace(/[-.]+$/, '');
  const domain = p.subdomain ? `${p.subdomain}.${p.namespace}.svc.${clusterDomain}` : '';
  return { hostname, domain };
}

/**
 * The kubelet's managed /etc/hosts: localhost entries and a line per pod IP
 * (`IP\tHOST.DOMAIN\tHOST` with a subdomain, `IP\tHOST` without), or for a
 * host-network pod the node's own file; then the hostAliases.
 */
export function etcHostsContent(p: PodSpec, podIPs: string[], clusterDomain: string, nodeHosts: () => string): string {
  let text: string;
  if (p.hostNetwork) {
    text = '# Kubernetes-managed hosts file (host network).\n' + nodeHosts();
  } else {
    const { hostname, domain } = podHostname(p, clusterDomain);
    text =
      '# Kubernetes-managed hosts file.\n' +
      '127.0.0.1\tlocalhost\n' +
      '::1\tlocalhost ip6-localhost ip6-loopback\n' +
      'fe00::0\tip6-localnet\n' +
      'fe00::0\tip6-mcastprefix\n' +
      'fe00::1\tip6-allnodes\n' +
      'fe00::2\tip6-allrouters\n';
    for (const ip of podIPs) text += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  }
  if (p.hostAliases.length > 0) {
    text += '\n# Entries added by HostAliases.\n';
    for (const a of p.hostAliases) text += `${a.ip}\t${a.hostnames.join('\t')}\n`;
  }
  return text;
}
