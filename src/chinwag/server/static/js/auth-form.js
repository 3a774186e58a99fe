// Signing in, up and out: the form, and which parts of the page each state shows.
const $ = (id) => document.getElementById(id);

/**
 * @param {object} hooks {client, signedIn() (the page is shown: load its data),
 *                        signedOut() (forget what the page showed)}
 * @returns {{showSignedOut(reason)}}
 */
export function initAuthForm({ client, signedIn, signedOut }) {
  const showError = (text) => { $("auth-error").textContent = text ?? ""; };

  async function submit(kind) {
    const username = $("auth-username").value.trim();
    const password = $("auth-password").value;
    showError("");
    try {
      if (kind === "up") await client.signUp(username, password);
      else await client.signIn(username, password);
    } catch (e) {
      showError(e.message);
    }
  }
  $("auth-form").addEventListener("submit", (e) => { e.preventDefault(); submit("in"); });
  $("sign-up").addEventListener("click", () => submit("up"));
  $("sign-out").addEventListener("click", () => client.signOut());

  function showSignedOut(reason) {
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("search-form").hidden = true;
    $("search-results").hidden = true;
    $("mention-notice").hidden = true;
    $("admin-link").hidden = true;
    $("whoami").textContent = "";
    $("auth").hidden = false;
    signedOut();
    showError(reason ? `Signed out: ${reason}` : "");
    $("auth-username").focus();
  }

  client.addEventListener("signed-in", () => {
    $("auth").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    $("search-form").hidden = false;
    $("whoami").textContent = client.user.username;
    $("admin-link").hidden = !client.user.is_admin;
    signedIn();
  });
  client.addEventListener("signed-out", (e) => {
    showSignedOut(e.detail.reason === "signed out" ? "" : e.detail.reason);
  });
  return { showSignedOut };
}
