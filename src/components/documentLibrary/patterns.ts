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

export function keyMatcher(patterns: readonly string[]): (key: string) => boolean {
  const res = patterns.map(globToRegExp);
  return (key) => res.some((re) => re.test(key));
}
