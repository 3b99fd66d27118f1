// The login page: sends the pasted token once as an Authorization header;
// the server checks it and keeps it in an HttpOnly cookie, then the
// dashboard loads. The token never goes into a URL or into storage that
// scripts can read.
const form = document.getElementById("login");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const field = document.getElementById("token");
  const token = field.value.trim();
  if (!token) return;
  // The login cookie is Secure: over plain HTTP to another machine the
  // browser would drop it, and the token would have crossed the network in
  // clear text. Refuse before sending it.
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname) || location.hostname.endsWith(".localhost");
  if (location.protocol !== "https:" && !local) {
    error.textContent = "Not logged in: this address is plain HTTP. Open the dashboard over HTTPS, or through kubectl port-forward on localhost.";
    error.hidden = false;
    return;
  }
  let res;
  try {
    res = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { Authorization: `Bearer ${token}` },
    });
  } catch (e) {
    error.textContent = `The dashboard could not be reached: ${e.message}`;
    error.hidden = false;
    return;
  }
  if (res.ok) {
    field.value = "";
    location.replace("/");
    return;
  }
  let msg = `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body.error) msg = body.error;
  } catch {
    // not JSON: keep the status
  }
  error.textContent = `Not logged in: ${msg}`;
  error.hidden = false;
});
