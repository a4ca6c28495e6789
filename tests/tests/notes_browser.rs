//! example-notes in headless Chromium (Debian's `chromium` and `chromium-driver`): the page
//! at `/` registers, logs in (the `__Host-session` session cookie is accepted on
//! http://127.0.0.1, a secure context, and stays out of `document.cookie`), saves notes
//! through its forms, renders a note title full of markup as text, and trips no CSP
//! violation on the way. Run by `scripts/test-all.sh`; plain `cargo test` skips it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use hardening_tests::notes::TempNotes;
use hardening_tests::webdriver::Browser;
use serde_json::Value;

/// A JavaScript string literal for `s`.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Runs `script` every 100 ms for up to 10 s until it returns something truthy (not
/// `false`, `null`, `0` or `""`); returns that, or the last answer on timeout.
async fn until(browser: &Browser, script: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = browser.run(script).await;
        let truthy = match &last {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        };
        if truthy {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The page's status line.
async fn status(browser: &Browser) -> String {
    browser
        .run(r#"return document.getElementById("status").textContent;"#)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Fills the login form with these credentials.
async fn fill_credentials(browser: &Browser, email: &str, password: &str) {
    browser
        .run(&format!(
            r#"document.getElementById("email").value = {};
               document.getElementById("password").value = {};"#,
            js(email),
            js(password)
        ))
        .await;
}

/// Fills the note form and clicks Save, then waits for the status to say so.
async fn save_note(browser: &Browser, title: &str, body: &str) {
    browser
        .run(&format!(
            r#"document.getElementById("status").textContent = "";
               document.getElementById("title").value = {};
               document.getElementById("body").value = {};
               document.getElementById("save-button").click();"#,
            js(title),
            js(body)
        ))
        .await;
    let saved = until(
        browser,
        r#"const s = document.getElementById("status").textContent; return s === "saved" || s.startsWith("not saved") ? s : null;"#,
    )
    .await;
    assert_eq!(saved, "saved", "saving {title:?}: status {saved}");
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn notes_page_registers_logs_in_and_saves_notes_in_chromium() {
    let temp = TempNotes::new("browser", &[]);
    let site = temp.serve().await;
    let browser = Browser::start().await;

    browser
        .goto(&format!("http://127.0.0.1:{}/", site.port()))
        .await;
    // Record CSP violations from here on (WebDriver scripts are not subject to the page's
    // CSP). The page's own script runs through the nonce: its first refresh() fails without
    // a session and leaves the login form shown, the note form hidden.
    browser
        .run(
            r#"window.violations = [];
               document.addEventListener("securitypolicyviolation", (e) =>
                 window.violations.push(e.violatedDirective + " " + e.blockedURI));"#,
        )
        .await;
    let ready = until(
        &browser,
        r#"return !document.getElementById("login").hidden && document.getElementById("new-note").hidden;"#,
    )
    .await;
    assert_eq!(ready, true, "the page's script did not run");

    // Register through the form.
    let email = "ada@example.com";
    let password = "a long passphrase for the browser";
    fill_credentials(&browser, email, password).await;
    browser
        .run(r#"document.getElementById("register-button").click();"#)
        .await;
    let registered = until(
        &browser,
        r#"const s = document.getElementById("status").textContent; return s.startsWith("regist") ? s : null;"#,
    )
    .await;
    assert_eq!(registered, "registered: now log in");

    // Log in through the form (the submit button, so the form's submit handler runs).
    browser
        .run(
            r#"document.getElementById("status").textContent = "";
               document.getElementById("login-button").click();"#,
        )
        .await;
    let logged_in = until(
        &browser,
        r#"const s = document.getElementById("status").textContent; return s.startsWith("log") ? s : null;"#,
    )
    .await;
    assert_eq!(logged_in, "logged in");
    // The page's refresh() after login reads GET /notes with nothing but the cookie: the
    // note form showing means the browser stored and sent back the __Host-session cookie.
    let shown = until(
        &browser,
        r#"return document.getElementById("login").hidden && !document.getElementById("new-note").hidden;"#,
    )
    .await;
    assert_eq!(
        shown,
        true,
        "the session cookie did not carry the login (status {:?})",
        status(&browser).await
    );
    let cookie = browser.run("return document.cookie;").await;
    assert_eq!(
        cookie, "",
        "the HttpOnly session cookie is visible to scripts"
    );

    // A note through the note form appears in the list.
    save_note(&browser, "Groceries", "milk, eggs").await;
    let notes = until(
        &browser,
        r#"const t = Array.from(document.getElementById("notes").querySelectorAll("li"), (li) => li.textContent);
           return t.includes("Groceries: milk, eggs") ? t : null;"#,
    )
    .await;
    assert_eq!(notes, serde_json::json!(["Groceries: milk, eggs"]));

    // Markup in a title is text: no element, no handler, and it shows literally.
    let hostile = "<img src=x onerror=window.pwned=1>";
    save_note(&browser, hostile, "<script>window.pwned=2</script>").await;
    let literal = format!("{hostile}: <script>window.pwned=2</script>");
    let notes = until(
        &browser,
        &format!(
            r#"const t = Array.from(document.getElementById("notes").querySelectorAll("li"), (li) => li.textContent);
               return t.includes({}) ? t : null;"#,
            js(&literal)
        ),
    )
    .await;
    assert!(
        notes
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.contains(&Value::from(literal.as_str()))),
        "{notes}"
    );
    // Give an image error handler its chance to run, had one been created.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = browser
        .run(
            r#"return {
                 pwned: typeof window.pwned,
                 elements: document.getElementById("notes").querySelectorAll("img, script").length,
                 violations: window.violations,
               };"#,
        )
        .await;
    assert_eq!(after["pwned"], "undefined", "{after}");
    assert_eq!(after["elements"], 0, "{after}");
    assert_eq!(
        after["violations"],
        serde_json::json!([]),
        "CSP violations: {after}"
    );

    // Log out through the page: the cookie is cleared and the login form is back.
    browser
        .run(r#"document.getElementById("logout-button").click();"#)
        .await;
    let out = until(
        &browser,
        r#"return !document.getElementById("login").hidden && document.getElementById("new-note").hidden;"#,
    )
    .await;
    assert_eq!(
        out,
        true,
        "logout did not end the session (status {:?})",
        status(&browser).await
    );
    assert_eq!(status(&browser).await, "logged out");
    let notes = browser
        .run(r#"return fetch("/notes").then((r) => r.status);"#)
        .await;
    assert_eq!(notes, 401, "the session outlived logout");
    let left = browser
        .run(r#"return document.getElementById("notes").children.length;"#)
        .await;
    assert_eq!(left, 0, "the last user's notes stay on screen after logout");

    drop(browser);
    drop(temp);
}
