// The engine's logging interface. The CLI prints these lines; the controller (later) sends them
// to pino with the request's identity on every line. Messages never carry secrets: callers
// pass names (instance ids, buckets, keys), never connection strings.
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
};

/** Plain lines on a stream (stderr for the CLI), fields as key=value. */
export function lineLogger(write: (line: string) => void): Logger {
  const fmt = (level: string, message: string, fields?: Record<string, unknown>): string => {
    const extra = Object.entries(fields ?? {})
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${level === 'info' ? '' : `${level}: `}${message}${extra === '' ? '' : ` ${extra}`}\n`;
  };
  return {
    info: (m, f) => {
      write(fmt('info', m, f));
    },
    warn: (m, f) => {
      write(fmt('warn', m, f));
    },
  };
}
