import { describe, expect, it } from 'vitest';
import { smallHeapWanted } from './heap.ts';

describe('smallHeapWanted', () => {
  it('follows the executor unless LC2_SMALL_HEAP says otherwise', () => {
    expect(smallHeapWanted('job', undefined)).toBe(true);
    expect(smallHeapWanted('inProcess', undefined)).toBe(false);
    expect(smallHeapWanted('inProcess', '')).toBe(false);
    expect(smallHeapWanted('inProcess', '1')).toBe(true);
    expect(smallHeapWanted('job', '0')).toBe(false);
  });

  it('names the variable and the values it takes', () => {
    expect(() => smallHeapWanted('job', 'yes')).toThrow(/LC2_SMALL_HEAP: "yes" is neither 1 nor 0/);
  });
});
