// The passkey buttons: each runs one WebAuthn ceremony between the JSON
// routes under /api/passkeys/ and the browser's navigator.credentials.
//
//   #add-passkey      (/passkeys)  register a passkey, then reload the list
//   #passkey-login    (/login)     sign in with a discoverable passkey
//   #passkey-signup   (/signup)    a new account whose one credential is a passkey
//   #passkey-confirm  (/confirm)   prove it is still you, before a sensitive action
//
// A button's data-next says where to go afterwards. What went wrong is
// shown in #passkey-error.
//
// Served as /static/passkeys.js: the Content-Security-Policy allows
// scripts from this site's files only.
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // The server's options carry binary values as base64url text; the
  // browser's API takes them as bytes.
  function creationOptions(options) {
    var publicKey = options.publicKey;
    publicKey.challenge = fromBase64url(publicKey.challenge);
    publicKey.user.id = fromBase64url(publicKey.user.id);
    (publicKey.excludeCredentials || []).forEach(function (credential) {
      credential.id = fromBase64url(credential.id);
    });
    return { publicKey: publicKey };
  }

  function requestOptions(options) {
    var publicKey = options.publicKey;
    publicKey.challenge = fromBase64url(publicKey.challenge);
    (publicKey.allowCredentials || []).forEach(function (credential) {
      credential.id = fromBase64url(credential.id);
    });
    return { publicKey: publicKey };
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      if (response.userHandle) {
        json.response.userHandle = toBase64url(response.userHandle);
      }
    }
    return json;
  }

  // POSTs `body` as JSON; resolves with the parsed answer, rejects with
  // the server's error message.
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body === undefined ? {} : body)
    }).then(function (response) {
      return response.json().then(
        function (answer) {
          if (!response.ok) {
            throw new Error(answer.error || "the server answered " + response.status);
          }
          return answer;
        },
        function () {
          throw new Error("the server answered " + response.status);
        }
      );
    });
  }

  function register(start, finish, body) {
    return post(start, body)
      .then(function (options) {
        return navigator.credentials.create(creationOptions(options));
      })
      .then(function (credential) {
        return post(finish, credentialJSON(credential));
      });
  }

  function authenticate() {
    return post("/api/passkeys/login/start")
      .then(function (options) {
        return navigator.credentials.get(requestOptions(options));
      })
      .then(function (credential) {
        return post("/api/passkeys/login/finish", credentialJSON(credential));
      });
  }

  function showError(error) {
    var place = document.getElementById("passkey-error");
    if (place) {
      place.textContent = "Passkey: " + (error && error.message ? error.message : String(error));
      place.hidden = false;
    }
  }

  function goNext(button) {
    location.assign(button.getAttribute("data-next") || "/");
  }

  var actions = {
    "add-passkey": function () {
      return register("/api/passkeys/register/start", "/api/passkeys/register/finish").then(
        function () {
          location.reload();
        }
      );
    },
    "passkey-login": function (button) {
      return authenticate().then(function () {
        goNext(button);
      });
    },
    "passkey-confirm": function (button) {
      return authenticate().then(function () {
        goNext(button);
      });
    },
    "passkey-signup": function (button) {
      var field = document.querySelector("input[name=username]");
      var username = field ? field.value : "";
      return register("/api/passkeys/signup/start", "/api/passkeys/signup/finish", {
        username: username
      }).then(function () {
        goNext(button);
      });
    }
  };

  Object.keys(actions).forEach(function (id) {
    var button = document.getElementById(id);
    if (!button) {
      return;
    }
    if (!window.PublicKeyCredential) {
      button.disabled = true;
      button.title = "This browser has no passkey support.";
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      actions[id](button).catch(function (error) {
        button.disabled = false;
        showError(error);
      });
    });
  });
})();
