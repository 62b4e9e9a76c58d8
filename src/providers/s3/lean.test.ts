import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { amzDate, authorization, canonicalQuery, encodeKey, s3Error, signingKey, xmlValue } from './lean.ts';

/** The credentials and scope of the SigV4 examples in the S3 API reference. */
const scope = '20130524/us-east-1/s3/aws4_request';
const example = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  scope,
  key: signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', scope),
};

describe('lean S3 requests', () => {
  it('signs like AWS (SigV4 example "GET Object" of the S3 API reference)', () => {
    const header = authorization(
      {
        method: 'GET',
        path: '/test.txt',
        headers: {
          host: 'examplebucket.s3.amazonaws.com',
          range: 'bytes=0-9',
          'x-amz-content-sha256': createHash('sha256').digest('hex'),
          'x-amz-date': amzDate(new Date('2013-05-24T00:00:00Z')),
        },
      },
      example,
    );
    expect(header).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('signs a query like AWS (SigV4 example "GET Bucket (List Objects)")', () => {
    const query = canonicalQuery({ prefix: 'J', 'max-keys': '2' });
    expect(query).toBe('max-keys=2&prefix=J');
    const header = authorization(
      {
        method: 'GET',
        path: '/',
        query,
        headers: {
          host: 'examplebucket.s3.amazonaws.com',
          'x-amz-content-sha256': createHash('sha256').digest('hex'),
          'x-amz-date': amzDate(new Date('2013-05-24T00:00:00Z')),
        },
      },
      example,
    );
    expect(header).toMatch(/Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7$/);
    expect(canonicalQuery({ uploadId: 'a/b+c=', partNumber: '1' })).toBe(
      'partNumber=1&uploadId=a%2Fb%2Bc%3D',
    );
  });

  it('encodes keys per segment as S3 does (only unreserved characters stay)', () => {
    expect(encodeKey("a b/c+d/e!'()*~._-/ü")).toBe('a%20b/c%2Bd/e%21%27%28%29%2A~._-/%C3%BC');
    expect(encodeKey('x//y')).toBe('x//y');
  });

  it('reads values of small XML documents, named and numeric entities decoded', () => {
    const xml = '<CopyObjectResult><ETag>&#34;abc&#34;</ETag><Code>a&amp;b&#x3C;</Code></CopyObjectResult>';
    expect(xmlValue(xml, 'ETag')).toBe('"abc"');
    expect(xmlValue(xml, 'Code')).toBe('a&b<');
    expect(xmlValue(xml, 'Missing')).toBeUndefined();
  });

  it('turns an error response into an SDK-like error (name = code, status in $metadata)', () => {
    const err = s3Error(
      { status: 404, headers: {}, body: '<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>' },
      'NotFound',
    ) as Error & { $metadata: { httpStatusCode: number } };
    expect(err.name).toBe('NoSuchKey');
    expect(err.message).toBe('gone');
    expect(err.$metadata.httpStatusCode).toBe(404);
    expect(s3Error({ status: 503, headers: {}, body: '' }, 'HTTP503').name).toBe('HTTP503');
  });
});
