/** A mistake in the command line: `peapod` prints it with a hint and exits 2. */
export class UsageError extends Error {}

// The commands' usage lines are here, not beside the commands, so that `peapod --help`
// and a usage error load none of a command's dependencies (gRPC, the server).

export const imageUsage = `  peapod image load FILE [FILE...] [--name REF] [--socket PATH]   (FILE "-" = stdin)
  peapod image ls [--socket PATH]
  peapod image rm REF [REF...] [--socket PATH]
  peapod image pull REF [--socket PATH]`;

export const podUsage = `  peapod run -f FILE [-f FILE]...                      (FILE "-" = stdin)
  peapod get pods [NAME | -l SELECTOR] [-A] [--show-labels] [--no-headers] [-w | --watch-only]
                  [-o wide|name|yaml|json|jsonpath[-as-json]=TEMPLATE|jsonpath-file=FILE
                      |custom-columns=SPEC|custom-columns-file=FILE]
  peapod describe pod NAME
  peapod logs NAME [-c CONTAINER | --all-containers] [-f] [--previous] [--tail N] [--since 5m | --since-time T]
                   [--timestamps] [--prefix]
  peapod exec NAME [-c CONTAINER] [-i] [-t] [--timeout SECONDS] -- COMMAND [ARG]...
  peapod delete [pod] NAME... | -l SELECTOR [--grace-period N] [--force]
      (pod commands: [--socket PATH] [-n NAMESPACE], default namespace "default";
       a pod may also be given as pod/NAME, as kubectl takes it)`;
