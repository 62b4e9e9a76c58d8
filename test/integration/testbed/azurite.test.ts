// Azurite smoke test: put and get a blob with the Azure SDK.
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { testbed, uniqueName } from '../../env/fixtures.ts';

describe('azurite (Azure Blob)', () => {
  it('puts and gets a blob', async () => {
    const service = BlobServiceClient.fromConnectionString(testbed().azure.connectionString);
    const container = service.getContainerClient(uniqueName('c'));
    await container.create();
    try {
      const blob = container.getBlockBlobClient('docs/hello.txt');
      await blob.upload('hello azure', 11);
      const body = await blob.downloadToBuffer();
      expect(body.toString()).toBe('hello azure');
    } finally {
      await container.delete();
    }
  });
});
