import { bigintReplacer } from './util/fs.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in order;
}

/**
 * Logs to stderr. At level debug every event is one JSON line (for machines);
 * otherwise a human line: time, level, message, then key=value pairs.
 */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const json = level === 'debug';
  const make = (base: Fields): Logger => {
    const emit = (lvl: LogLevel, msg: string, fields?: Fields) => {
      if (order[lvl] < order[level]) return;
      const all = { ...base, ...fields };
      const time = new Date().toISOString();
      if (json) {
        write(JSON.stringify({ time, level: lvl, msg, ...all }, jsonReplacer) + '\n');
        return;
      }
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join(' ');
      write(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}\n`);
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (f) => make({ ...base, ...f }),
    };
  };
  return make({});
}

/** An Error's message and name are not own enumerable properties: JSON.stringify would drop them. */
function jsonReplacer(key: string, v: unknown): unknown {
  if (v instanceof Error) return { ...v, name: v.name, message: v.message };
  return bigintReplacer(key, v);
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v, bigintReplacer) ?? String(v);
}

export const silentLogger: Logger = createLogger('error', () => {});
