// The attach button: the chosen file is uploaded into the open room (or, with no
// room, for the user alone) with a progress bar and a status line.

const $ = (id) => document.getElementById(id);

/** @param {object} hooks {client, view(), onOwnFile(done), onError(text)} */
export function initUploadForm({ client, view, onOwnFile, onError }) {
  $("attach").addEventListener("change", async () => {
    const file = $("attach").files[0];
    if (!file || !view()) return;
    const bar = $("upload-progress");
    bar.hidden = false;
    bar.value = 0;
    $("upload-status").textContent = `Uploading ${file.name}…`;
    try {
      const roomId = view().kind === "room" ? view().room : null;
      const done = await client.upload(file, { roomId, onProgress: (sent, total) => {
        bar.value = total ? Math.round((sent / total) * 100) : 100;
        $("upload-status").textContent = `Uploading ${file.name}: ${bar.value} %`;
      } });
      $("upload-status").textContent = `Uploaded ${done.file_name}: 100 %`;
      if (!roomId) onOwnFile(done);
    } catch (err) {
      $("upload-status").textContent = "";
      onError(`Upload failed: ${err.message}`);
    } finally { $("attach").value = ""; }
  });
}
