// The launcher's spec file format (native/container.h): percent-encoded fields.
import { describe, expect, it } from 'vitest';
import { encodeField, NativeSpec } from '../../src/container/spec.js';

describe('native spec encoding', () => {
  it('passes plain fields through and percent-encodes every other byte', () => {
    expect(encodeField('/var/lib/peapod/containers/ab12/upper')).toBe('/var/lib/peapod/containers/ab12/upper');
    expect(encodeField('PATH=/usr/bin:/bin,x+y@z-1')).toBe('PATH=/usr/bin:/bin,x+y@z-1');
    expect(encodeField('')).toBe('%');
    expect(encodeField('a b\nc%')).toBe('a%20b%0Ac%25');
    expect(encodeField('é')).toBe('%C3%A9');
    expect(encodeField('%')).toBe('%25');
  });

  it('writes one directive per line', () => {
    const spec = new NativeSpec().add('arg', 'sh').add('arg', '-c').add('arg', 'echo hi there').add('user', 0, 0);
    expect(spec.toString()).toBe('arg sh\narg -c\narg echo%20hi%20there\nuser 0 0\n');
  });
});
