// Typing indicators in the open room: who else is typing (each name forgotten after
// 15 s without news), and telling the room while I type (at most every 3 s, "stopped"
// after 4 s idle, on blur and when the message is sent).
const $ = (id) => document.getElementById(id);

export class Typing {
  constructor(client, state) {
    this.client = client;
    this.state = state; // state.view (the open room), state.typing (username -> timer)
    this.sent = 0;
    this.idle = null;
  }

  heard(d) {
    const typing = this.state.typing;
    if (this.state.view?.room !== d.room_id || d.username === this.client.user.username) return;
    if (d.is_typing) {
      clearTimeout(typing.get(d.username));
      typing.set(d.username, setTimeout(() => this.clear(d.username), 15000));
    } else this.clear(d.username);
    this.render();
  }

  clear(username) {
    clearTimeout(this.state.typing.get(username));
    this.state.typing.delete(username);
    this.render();
  }

  render() {
    const names = [...this.state.typing.keys()];
    $("typing").textContent = names.length === 0 ? ""
      : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  }

  input() {
    if (this.state.view?.kind !== "room") return;
    const room = this.state.view.room;
    if (Date.now() - this.sent > 3000) { this.client.typing(room, true); this.sent = Date.now(); }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => { this.client.typing(room, false); this.sent = 0; }, 4000);
  }

  blur() {
    if (this.state.view?.kind !== "room" || !this.sent) return;
    clearTimeout(this.idle);
    this.client.typing(this.state.view.room, false);
    this.sent = 0;
  }

  /** The message was sent, which ends the indicator: the next keystroke starts anew. */
  sentMessage() {
    clearTimeout(this.idle);
    this.sent = 0;
  }
}
