// Display names of the cloud providers' stores and snapshot services, computed without their
// SDKs: a store opened lazily (src/providers/lazy.ts) has its name before the SDK is loaded.
// Names never carry credentials, even when an endpoint URL has userinfo.
import { ValidationError } from '../errors/index.ts';

/** The host (and port) of an S3 endpoint; ValidationError when it is not an http(s) URL. */
export function endpointHost(endpoint: string): string {
  const url = URL.parse(endpoint);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') {
    throw new ValidationError(
      `S3 endpoint "${endpoint}" is not an http(s) URL; write it with its scheme, e.g. http://127.0.0.1:9000`,
    );
  }
  return url.host;
}

/** `s3://<endpoint host>`, or AWS S3's regional endpoint. */
export function s3StoreName(region: string, endpoint: string | undefined): string {
  return endpoint === undefined ? `s3://s3.${region}.amazonaws.com` : `s3://${endpointHost(endpoint)}`;
}

/** `rds://<endpoint host>`, or `rds://<region>`. */
export function rdsName(region: string, endpoint: string | undefined): string {
  return endpoint === undefined ? `rds://${region}` : `rds://${new URL(endpoint).host}`;
}
