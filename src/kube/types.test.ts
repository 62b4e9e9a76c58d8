import { describe, expect, it } from 'vitest';
import { isNewer } from './types.ts';

describe('isNewer', () => {
  it('compares resourceVersions as the decimal integers they are', () => {
    expect(isNewer('10', '9')).toBe(true);
    expect(isNewer('9', '10')).toBe(false);
    expect(isNewer('123457', '123456')).toBe(true);
    expect(isNewer('123456', '123456')).toBe(false);
    expect(isNewer('99999999999999999999', '99999999999999999998')).toBe(true);
    // leading zeros are still numbers
    expect(isNewer('010', '9')).toBe(true);
    expect(isNewer('9', '010')).toBe(false);
  });

  it('never calls a version it cannot read newer', () => {
    expect(isNewer('abc', '1')).toBe(false);
    expect(isNewer('2', 'abc')).toBe(false);
    expect(isNewer(undefined, '1')).toBe(false);
    expect(isNewer('1', undefined)).toBe(false);
  });
});
