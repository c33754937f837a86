// The signed-in pages' side of the live session: listens to /api/events
// and, when the server says that this browser's session ended (a password
// change or "Sign out other devices" elsewhere, a revocation, a sign-out in
// another tab, the account deleted), shows why and goes to the sign-in
// page, which brings the user back here afterwards.
//
// Served as /static/live.js: the Content-Security-Policy allows scripts
// from this site's files only (no inline script) and connections to this
// site only.
(function () {
  "use strict";

  // The same words as the server's notices (src/html.rs).
  var REASONS = {
    credential_changed:
      "You were signed out because your password was changed on another device. " +
      "Sign in with the new password.",
    epoch_changed:
      "You were signed out because \"Sign out other devices\" was used on another device.",
    user_gone:
      "You were signed out because the account you were signed in to no longer exists.",
    revoked: "You were signed out, in another tab or from another device.",
    credential_removed:
      "You were signed out because the passkey this session signed in with was removed.",
    expired:
      "You were signed out because this session was unused for too long, or reached its " +
      "maximum age. Please sign in again."
  };
  var SIGNED_OUT = "You were signed out. Please sign in again.";
  // Long enough to read that something happened; the sign-in page says
  // why again.
  var NOTICE_MS = 1000;
  // Before trying again after a stream that could not be trusted.
  var RETRY_MS = 5000;

  var source = null;
  var leaving = false;

  function signedOut(reason) {
    if (leaving) {
      return;
    }
    leaving = true;
    var notice = document.createElement("p");
    notice.id = "signed-out";
    notice.className = "notice";
    notice.setAttribute("role", "alert");
    notice.textContent =
      (REASONS[reason] || SIGNED_OUT) + " Taking you to the sign-in page\u2026";
    var main = document.querySelector("main") || document.body;
    main.insertBefore(notice, main.firstChild);
    var here = location.pathname + location.search;
    setTimeout(function () {
      location.assign("/login?next=" + encodeURIComponent(here));
    }, NOTICE_MS);
  }

  // The stream stopped without saying why (the server restarted, or it
  // refused to reconnect): signed out only if /api/me says so.
  function check() {
    fetch("/api/me", { cache: "no-store", credentials: "same-origin" }).then(
      function (response) {
        if (response.status === 401) {
          signedOut(null);
        } else {
          setTimeout(connect, RETRY_MS);
        }
      },
      function () {
        setTimeout(connect, RETRY_MS);
      }
    );
  }

  function connect() {
    if (leaving) {
      return;
    }
    source = new EventSource("/api/events");
    source.addEventListener("session-ended", function (event) {
      source.close();
      var reason = null;
      try {
        reason = JSON.parse(event.data).reason;
      } catch (error) {
        reason = null;
      }
      if (reason === "server_error") {
        // The server could not check the session for a while: it may
        // still hold.
        setTimeout(check, RETRY_MS);
      } else {
        signedOut(reason);
      }
    });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself after a dropped connection; it
      // gives up (CLOSED) when the answer is not a stream, such as the
      // 401 of a session that is over.
      if (source.readyState === EventSource.CLOSED) {
        check();
      }
    });
  }

  // A form sent from this page (such as "Sign out") leaves it: its own
  // outcome is not news to show here.
  document.addEventListener("submit", function () {
    leaving = true;
    if (source) {
      source.close();
    }
  });

  connect();
})();
