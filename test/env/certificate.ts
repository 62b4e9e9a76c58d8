// A self-signed certificate (EC P-256, a week long) built without openssl: for the kubelet's log
// endpoint (the API server does not verify a kubelet's certificate unless
// --kubelet-certificate-authority is set) and for TLS servers in tests and benches. The subject's
// common name is the name to verify it by (a client's servername); it has no subjectAltName.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const length: number[] = [];
  for (let n = body.length; n > 0; n = Math.floor(n / 256)) length.unshift(n % 256);
  const header = body.length < 0x80 ? [tag, body.length] : [tag, 0x80 | length.length, ...length];
  return Buffer.concat([Buffer.from(header), body]);
}

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const value of rest) {
    const encoded = [value % 128];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) encoded.unshift((v % 128) | 0x80);
    bytes.push(...encoded);
  }
  return der(0x06, Buffer.from(bytes));
}

export function selfSignedCertificate(commonName: string): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const name = der(0x30, der(0x31, der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from(commonName)))));
  const ecdsaWithSha256 = der(0x30, oid('1.2.840.10045.4.3.2'));
  const utcTime = (d: Date): Buffer =>
    der(0x17, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.concat([Buffer.from([1]), randomBytes(8)])),
    ecdsaWithSha256,
    name,
    der(0x30, utcTime(new Date(Date.now() - 3_600_000)), utcTime(new Date(Date.now() + 7 * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const certificate = der(
    0x30,
    tbs,
    ecdsaWithSha256,
    der(0x03, Buffer.from([0]), sign('sha256', tbs, privateKey)),
  );
  const base64 = certificate.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cert: `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`,
  };
}
