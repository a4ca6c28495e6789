//! `GET /`: one HTML page, a login form and the notes list. Its only script carries the
//! per-response CSP nonce; nothing else on the page can run script.

use axum::response::Html;
use hardening_core::headers::CspNonce;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Notes</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<h1>Notes</h1>
<form id="login">
  <input id="email" type="email" autocomplete="username" placeholder="email" required>
  <input id="password" type="password" autocomplete="current-password" placeholder="password" required>
  <button id="login-button" type="submit">Log in</button>
  <button id="register-button" type="button">Register</button>
</form>
<form id="new-note" hidden>
  <input id="title" placeholder="title" required maxlength="200">
  <textarea id="body" placeholder="note"></textarea>
  <button id="save-button" type="submit">Save</button>
  <button id="logout-button" type="button">Log out</button>
</form>
<p id="status" role="status"></p>
<ul id="notes"></ul>
<script nonce="NONCE">
"use strict";
const $ = (id) => document.getElementById(id);
const say = (text) => { $("status").textContent = text; };
async function api(method, path, body) {
  // Same-origin fetch: the session cookie goes along; the browser adds Sec-Fetch-Site.
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: report the status */ }
  if (!res.ok) throw new Error((data && (data.detail || data.title)) || res.status);
  return data;
}
async function refresh() {
  try {
    const notes = await api("GET", "/notes");
    $("login").hidden = true;
    $("new-note").hidden = false;
    const list = $("notes");
    list.replaceChildren();
    for (const n of notes) {
      const li = document.createElement("li");
      li.textContent = n.title + ": " + n.body; // text, never HTML
      list.append(li);
    }
  } catch (_) {
    // Signed out (or never in): nothing of the last user's stays on screen.
    $("notes").replaceChildren();
    $("login").hidden = false;
    $("new-note").hidden = true;
  }
}
const creds = () => ({ email: $("email").value, password: $("password").value });
$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await api("POST", "/auth/login", creds()); say("logged in"); await refresh(); }
  catch (err) { say("login failed: " + err.message); }
});
$("register-button").addEventListener("click", async () => {
  try { await api("POST", "/auth/register", creds()); say("registered: now log in"); }
  catch (err) { say("registration failed: " + err.message); }
});
$("new-note").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api("POST", "/notes", { title: $("title").value, body: $("body").value });
    $("title").value = ""; $("body").value = "";
    say("saved"); await refresh();
  } catch (err) { say("not saved: " + err.message); }
});
$("logout-button").addEventListener("click", async () => {
  try { await api("POST", "/auth/logout"); say("logged out"); }
  catch (err) { say("logout failed: " + err.message); }
  await refresh();
});
refresh();
</script>
</body>
</html>
"#;

/// The page, with this response's nonce on its script.
pub(crate) async fn index(nonce: CspNonce) -> Html<String> {
    Html(PAGE.replace("NONCE", nonce.as_str()))
}
