// The few MinIO admin API calls the role-assumption tests need (a user, a policy, the mapping
// between them), signed with the bed's root keys. MinIO's admin API is not S3: requests are
// SigV4-signed for service "s3", and a new user's secret travels encrypted the way madmin-go's
// EncryptData does it (PBKDF2-SHA256 key, sio-go AES-256-GCM stream), so this speaks it directly
// instead of pulling in `mc` or a Go toolchain for the tests.
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export interface MinioRoot {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** One admin call (`/minio/admin/v3/<path>`), SigV4-signed with the root keys; throws unless 2xx. */
async function adminCall(
  root: MinioRoot,
  request: { method: string; path: string; query: Record<string, string>; body?: Buffer },
): Promise<string> {
  const url = new URL(`/minio/admin/v3/${request.path}`, root.endpoint);
  const body = request.body ?? Buffer.alloc(0);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const query = Object.keys(request.query)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(request.query[k] ?? '')}`)
    .join('&');
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': sha256Hex(body),
    'x-amz-date': amzDate,
  };
  const names = Object.keys(headers).sort();
  const canonical = [
    request.method,
    url.pathname,
    query,
    ...names.map((h) => `${h}:${headers[h] ?? ''}`),
    '',
    names.join(';'),
    headers['x-amz-content-sha256'],
  ].join('\n');
  const scope = `${day}/${root.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const key = ['aws4_request', 's3', root.region, day].reduceRight<Buffer | string>(
    (k, part) => hmac(k, part),
    `AWS4${root.secretAccessKey}`,
  );
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const { host: _host, ...sent } = headers;
  const response = await fetch(`${url.origin}${url.pathname}?${query}`, {
    method: request.method,
    headers: {
      ...sent,
      authorization: `AWS4-HMAC-SHA256 Credential=${root.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
    },
    ...(body.length === 0 ? {} : { body }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`MinIO admin ${request.path}: HTTP ${response.status}: ${text}`);
  return text;
}

/**
 * madmin-go EncryptData with its PBKDF2 + AES-256-GCM choice (algorithm id 0x02):
 * salt(32) | 0x02 | nonce(8) | sio-go stream. A payload below sio's 16 KiB fragment is one final
 * fragment (sequence number 1) whose associated data is 0x80 followed by the GCM tag of an empty
 * message under sequence number 0.
 */
export function madminEncrypt(password: string, plaintext: Buffer): Buffer {
  if (plaintext.length >= 16 * 1024) throw new Error('madminEncrypt: only single-fragment payloads');
  const salt = randomBytes(32);
  const nonce = randomBytes(8);
  const key = pbkdf2Sync(password, salt, 8192, 32, 'sha256');
  const nonceFor = (seq: number): Buffer => {
    const n = Buffer.alloc(12);
    nonce.copy(n);
    n.writeUInt32LE(seq, 8);
    return n;
  };
  const header = createCipheriv('aes-256-gcm', key, nonceFor(0));
  header.final();
  const associated = Buffer.concat([Buffer.from([0x80]), header.getAuthTag()]);
  const cipher = createCipheriv('aes-256-gcm', key, nonceFor(1));
  cipher.setAAD(associated);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([salt, Buffer.from([0x02]), nonce, sealed]);
}

/** Creates (or replaces) a canned policy. */
export async function addPolicy(root: MinioRoot, name: string, document: unknown): Promise<void> {
  await adminCall(root, {
    method: 'PUT',
    path: 'add-canned-policy',
    query: { name },
    body: Buffer.from(JSON.stringify(document)),
  });
}

/** Creates an enabled user with these long-term keys and attaches the named policy to it. */
export async function addUser(
  root: MinioRoot,
  user: { accessKeyId: string; secretAccessKey: string; policy: string },
): Promise<void> {
  await adminCall(root, {
    method: 'PUT',
    path: 'add-user',
    query: { accessKey: user.accessKeyId },
    body: madminEncrypt(
      root.secretAccessKey,
      Buffer.from(JSON.stringify({ secretKey: user.secretAccessKey, status: 'enabled' })),
    ),
  });
  await adminCall(root, {
    method: 'PUT',
    path: 'set-user-or-group-policy',
    query: { policyName: user.policy, userOrGroup: user.accessKeyId, isGroup: 'false' },
  });
}

export async function removeUser(root: MinioRoot, accessKeyId: string): Promise<void> {
  await adminCall(root, { method: 'DELETE', path: 'remove-user', query: { accessKey: accessKeyId } });
}

export async function removePolicy(root: MinioRoot, name: string): Promise<void> {
  await adminCall(root, { method: 'DELETE', path: 'remove-canned-policy', query: { name } });
}
