import { describeObjectStoreConformance } from '../../../test/conformance/objectStore.ts';
import { MemoryObjectStore } from './objectStore.ts';

describeObjectStoreConformance(
  'MemoryObjectStore',
  async () => {
    const store = new MemoryObjectStore();
    await store.createBucket('bucket');
    await store.createBucket('other');
    return { store, bucket: 'bucket', otherBucket: 'other', newBucket: 'fresh' };
  },
  { sha256: { put: true, copy: true, multipartCopy: true, head: true, list: true } },
);
