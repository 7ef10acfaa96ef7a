// A real S3-compatible server in-process (s3rver): SigV4 presigned URLs are checked for real, signature and
// expiry included. Fake credentials S3RVER/S3RVER; path-style addressing on 127.0.0.1 with a random port.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  directory: string;
  client(): S3Client;
  stop(): Promise<void>;
}

export async function startLocalS3(bucket = 'fr-cache'): Promise<LocalS3> {
  const directory = mkdtempSync(join(tmpdir(), 'fr-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    directory,
    client: () =>
      new S3Client({
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      }),
    stop: async () => {
      server.httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
