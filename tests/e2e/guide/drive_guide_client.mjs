// Runs the guide's JavaScript client against a live chinwag: the guide hard-codes
// localhost:8000, so the test passes the real port and we point the class at it by
// subclassing connect() with the same URL shape.
import { WebSocketChatClient } from "./guide_client.mjs";

const [port, token] = process.argv.slice(2);
const frames = [];
class Driven extends WebSocketChatClient {
  connect() {
    const params = new URLSearchParams({ token: this.token });
    if (this.roomId) params.append("room_id", this.roomId);
    this.socket = new WebSocket(`ws://localhost:${port}/api/v1/ws/ws?${params}`);
    this.socket.onopen = (e) => { this.onOpen(e); this.sendChatMessage("Hello, AI!"); };
    this.socket.onmessage = this.onMessage.bind(this);
    this.socket.onclose = () => {};
    this.socket.onerror = this.onError.bind(this);
  }
  handleChatMessage(message) {
    frames.push(message);
    if (message.data.done) {
      console.log(JSON.stringify(frames));
      process.exit(0);
    }
  }
  handleTypingIndicator() {}
  handleFileUpload() {}
  handleError(message) { console.error(JSON.stringify(message)); process.exit(2); }
}
setTimeout(() => { console.error("no completion within 20 s"); process.exit(3); }, 20000);
new Driven(token, null).connect();
