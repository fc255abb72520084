// Image inputs that point at this edge's own uploads (the URL POST /v1/files returned, which `replicate.run` puts in
// place of a Buffer or Blob) are inlined as data URIs before validation, so the runner never needs the edge's
// credentials; data URIs with a generic type (the client's fallback encoding) get their sniffed image type.
import { invalidInput } from '@sd/shared/domain-error';
import { dataUriOf, normalizeImageString } from '../images/image-data.ts';
import { getFileBytes } from './file-store.ts';

/** The input fields that carry images. */
const IMAGE_FIELDS = ['image', 'mask'] as const;

/** The file id in `${publicBaseUrl}/v1/files/<id>` (or .../download), or null for any other string. */
export function ownFileId(value: string, publicBaseUrl: string): string | null {
  const prefix = `${publicBaseUrl}/v1/files/`;
  if (!value.startsWith(prefix)) return null;
  const m = /^([a-z0-9]{1,64})(?:\/download)?$/.exec(value.slice(prefix.length).split('?')[0]);
  return m ? m[1] : null;
}

export async function inlineFileInputs(
  kv: KVNamespace,
  ownerKeyId: string,
  publicBaseUrl: string,
  input: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let out = input;
  for (const field of IMAGE_FIELDS) {
    const value = input[field];
    if (typeof value !== 'string') continue;
    let next = value;
    const id = ownFileId(value, publicBaseUrl);
    if (id) {
      const file = await getFileBytes(kv, ownerKeyId, id);
      if (!file) {
        throw invalidInput(
          `input.${field}`,
          `input.${field} refers to file ${id}, which does not exist or has expired (uploads are kept 24 h)`,
        );
      }
      next = dataUriOf(file.bytes, file.record.content_type);
    } else if (/^data:(?:application\/octet-stream|binary\/octet-stream)?[;,]/i.test(value)) {
      // Only a generic type is corrected, and only when the bytes are an image; anything else is left for the
      // input schema, which reports it together with every other problem of the input.
      try {
        next = normalizeImageString(value, `input.${field}`);
      } catch {
        next = value;
      }
    }
    if (next !== value) out = { ...out, [field]: next };
  }
  return out;
}
