// Uploads from the browser: a File/Blob sent in chunks over the client's socket
// (init, chunk*, finalize), a few chunks in flight, resumed with `status` after a
// dropped connection, verified by its SHA-256.

import { ChinwagError } from "./connection.js";

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function sha256Hex(buffer) {
  if (!globalThis.crypto?.subtle) {
    throw new ChinwagError("uploads need a secure page (https, or http on localhost)",
                           { code: "INSECURE_CONTEXT" });
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Upload a File/Blob in chunks; `onProgress(sentBytes, totalBytes)` is called as
 * chunks are acknowledged. Resolves with the `complete` reply ({file_id, url, ...});
 * with `roomId` every member also gets it as a room event. After a dropped
 * connection it asks `status` and sends only what is missing.
 */
export async function upload(client, file, { roomId = null, onProgress = () => {}, window = 3 } = {}) {
  const buffer = await file.arrayBuffer();
  const bytes = new Uint8Array(buffer);
  const checksum = await sha256Hex(buffer);
  const envelope = (data) => (roomId ? { type: "file_upload", room_id: roomId, data }
                                     : { type: "file_upload", data });
  await client.ready();
  const init = await client._request(envelope({
    upload_type: "init", file_name: file.name || "file", file_size: bytes.length,
    mime_type: file.type || null,
  }));
  const { file_id: fileId, chunk_size: size, total_chunks: total } = init;
  const done = new Set();
  onProgress(0, bytes.length);
  const sentBytes = () => Math.min(bytes.length, done.size * size);
  for (let round = 0; done.size < total; round += 1) {
    try {
      if (round > 0) {
        await client.ready();
        const st = await client._request(envelope({ upload_type: "status", file_id: fileId }));
            for (const i of st.received_chunks) done.add(i);
      }
      const todo = [];
      for (let i = 0; i < total; i += 1) if (!done.has(i)) todo.push(i);
      let next = 0;
      const worker = async () => {
        while (next < todo.length) {
          const i = todo[next++];
          const part = bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size));
          await client._request(envelope({ upload_type: "chunk", file_id: fileId, chunk_index: i,
                                         total_chunks: total, chunk_data: base64(part) }));
          done.add(i);
          onProgress(sentBytes(), bytes.length);
        }
      };
      await Promise.all(Array.from({ length: Math.min(window, todo.length) }, worker));
    } catch (e) {
      if (e.code !== "DISCONNECTED") throw e;
    }
  }
  for (;;) {
    try {
      await client.ready();
      const complete = await client._request(envelope({ upload_type: "finalize", file_id: fileId,
                                                      checksum }),
                                           { id: `finalize:${fileId}` });
      onProgress(bytes.length, bytes.length);
      return complete;
    } catch (e) {
      if (e.code !== "DISCONNECTED") throw e;
    }
  }
}
