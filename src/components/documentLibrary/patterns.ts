// Glob patterns for generated files: `**` crosses "/", `*` and `?` do not. A leading `**/`
// also matches at the top of the bucket.
function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      out += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * Compiled patterns by glob. A backup builds its matcher from the configuration's few patterns,
 * and in a burst of 1,000 backups compiling them each time cost the controller 0.09 s of CPU
 * (docs/performance.md, controller round 11); the set of globs a process sees is its
 * configuration's, so the cache stays small.
 */
const compiled = new Map<string, RegExp>();

function compile(glob: string): RegExp {
  let re = compiled.get(glob);
  if (re === undefined) {
    re = globToRegExp(glob);
    if (compiled.size < 1000) compiled.set(glob, re);
  }
  return re;
}

export function keyMatcher(patterns: readonly string[]): (key: string) => boolean {
  const res = patterns.map(compile);
  return (key) => res.some((re) => re.test(key));
}
