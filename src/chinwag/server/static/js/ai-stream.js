// An AI reply as the browser client hands it to a page.

/**
 * An AI reply being written: `for await (const text of stream)` yields the chunks;
 * `stream.done` resolves with the completion ({tokens_used, model_used, cost_usd,
 * cancelled?}); `stream.stop()` cancels it.
 */
export class AIStream {
  constructor(client, conversationId = null) {
    this.client = client;
    this.conversationId = conversationId;
    this.text = "";
    this._queue = [];
    this._wake = null;
    this._finished = false;
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.done.catch(() => {});
  }
  _push(text) { this.text += text; this._queue.push(text); this._wake?.(); }
  _finish(summary) { this._finished = true; this._resolve(summary); this._wake?.(); }
  _fail(error) { this._finished = true; this._reject(error); this._wake?.(); }
  stop() { if (this.conversationId != null) this.client.cancel(this.conversationId); }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this._queue.length) { yield this._queue.shift(); continue; }
      if (this._finished) { await this.done; return; }
      await new Promise((r) => { this._wake = r; });
      this._wake = null;
    }
  }
}
