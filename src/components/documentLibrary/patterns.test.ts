import { describe, expect, it } from 'vitest';
import { defaultGeneratedPatterns } from '../../config/config.ts';
import { keyMatcher } from './patterns.ts';

describe('generated-file patterns', () => {
  const generated = keyMatcher(defaultGeneratedPatterns);

  it('matches Liferay renditions at any depth, including the top level', () => {
    expect(generated('document_library/20097/thumbnails/12/1.0.png')).toBe(true);
    expect(generated('thumbnails/1.png')).toBe(true);
    expect(generated('document_library/20097/previews/12/1.0.pdf')).toBe(true);
    expect(generated('adaptive-media/x/y.jpg')).toBe(true);
  });

  it('leaves originals alone', () => {
    expect(generated('document_library/20097/12/1.0')).toBe(false);
    expect(generated('document_library/my-thumbnails-report.pdf')).toBe(false);
    expect(keyMatcher(['*.tmp'])('a/b.tmp')).toBe(false);
    expect(keyMatcher(['*.tmp'])('b.tmp')).toBe(true);
    expect(keyMatcher(['a?c'])('a.c')).toBe(true);
    expect(keyMatcher(['a.c'])('abc')).toBe(false);
  });
});
