// The demo page: @hallpass/client from its browser bundle
// (clients/js/dist/hallpass.js, built by `npm run build` in clients/js)
// against a development issuer. ?server=URL picks another issuer than
// http://127.0.0.1:8080 (`make run`).
import { ClientCodes, ServerCodes, createClient } from "../../clients/js/dist/hallpass.js";
import { qrSVG } from "./qr.js";

const server = new URLSearchParams(location.search).get("server") || "http://127.0.0.1:8080";
const $ = (id) => document.getElementById(id);

// What the app tells the user for each code (docs/api.md, "Errors").
function explain(err) {
  switch (err?.code) {
    case ServerCodes.usernameTaken: return "That name is taken (or looks like one that is). Pick another.";
    case ServerCodes.usernameInvalid: return `That name is not allowed (${err.reason || "disallowed_character"}): 3 to 32 letters or digits of one script, with _ . - inside.`;
    case ServerCodes.invalidLinkCode: return "That link code is wrong, expired or used. Make a new one on a signed-in device.";
    case ServerCodes.invalidRecoveryCode: return "That username and recovery code do not match an unused code.";
    case ServerCodes.invalidGrant: return "This browser was signed out. Come back with a link code or a recovery code.";
    case ServerCodes.rateLimited: return `Too many attempts. Try again in ${err.retryAfter || "a few"} seconds.`;
    case ServerCodes.unavailable: return "The server is busy. Try again in a moment.";
    case ServerCodes.invalidDPoPProof: return "The server refused this browser's proof. Is the clock right, and is the server URL its public URL?";
    case ClientCodes.networkError: return `Cannot reach ${server}. Is \`hallpass serve --dev --cors-origins ${location.origin}\` running?`;
    case ClientCodes.noSession: return "Not signed in.";
    default: return `Something went wrong (${err?.code || err}).`;
  }
}

function showError(err) {
  $("error").textContent = explain(err);
  $("error").hidden = false;
  if (!(err && err.code)) console.error(err);
}

function status(text) {
  $("status").textContent = text;
}

async function run(button, fn) {
  $("error").hidden = true;
  if (button) button.disabled = true;
  try {
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    if (button) button.disabled = false;
  }
}

let client;

async function render() {
  const st = client.state();
  $("signed-in").hidden = !st;
  $("signed-out").hidden = !!st;
  if (!st) {
    status("Not signed in.");
    return;
  }
  status(`Signed in as ${st.username}.`);
  $("me-username").textContent = st.username;
  $("me-account").textContent = st.accountId;
  $("me-device").textContent = st.deviceId;
  const [me, devices] = await Promise.all([client.me(), client.devices()]);
  $("me-codes-left").textContent = String(me.recoveryCodesLeft);
  const body = $("devices").querySelector("tbody");
  body.replaceChildren(...devices.map((d) => {
    const tr = document.createElement("tr");
    const cells = [d.name + (d.current ? " (this one)" : ""), d.lastUsed.toLocaleString(), d.active ? "signed in" : "signed out"];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (d.active && !d.current) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Sign out";
      b.onclick = () => run(b, async () => {
        await client.revokeDevice(d.id);
        await render();
      });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
}

async function main() {
  $("server").textContent = server;
  client = await createClient({ server });
  // For the browser console (and the demo's tests).
  window.hallpass = client;
  client.on("signedout", ({ reason }) => {
    $("link-code-out").hidden = true;
    $("recovery-codes").hidden = true;
    if (reason === "invalid_grant" || reason === "storage") showError({ code: ServerCodes.invalidGrant });
  });
  client.on("statechange", () => run(null, render));

  $("signup-form").onsubmit = (e) => {
    e.preventDefault();
    run($("signup"), () => client.signup({ username: $("username").value.trim(), deviceName: $("device-name").value.trim() }));
  };
  $("link-form").onsubmit = (e) => {
    e.preventDefault();
    run($("link"), () => client.link({ code: $("link-code").value.trim(), deviceName: $("device-name").value.trim() }));
  };
  $("recover-form").onsubmit = (e) => {
    e.preventDefault();
    run($("recover"), () => client.recover({
      username: $("recover-username").value.trim(),
      code: $("recover-code").value.trim(),
      deviceName: $("device-name").value.trim(),
      signOutOtherDevices: $("recover-signout").checked,
    }));
  };
  $("refresh").onclick = () => run($("refresh"), async () => {
    await client.refresh();
    status("Refreshed: a new access token, bound to this browser's key.");
  });
  $("logout").onclick = () => run($("logout"), () => client.logout());
  $("delete").onclick = () => run($("delete"), async () => {
    if (confirm("Delete the account? Every device is signed out, and this cannot be undone.")) await client.deleteAccount();
  });
  $("make-link-code").onclick = () => run($("make-link-code"), async () => {
    const { code, expiresAt } = await client.createLinkCode();
    $("link-code-text").textContent = code;
    $("link-code-qr").innerHTML = qrSVG(code);
    $("link-code-expires").textContent = expiresAt.toLocaleTimeString();
    $("link-code-out").hidden = false;
  });
  $("make-recovery-codes").onclick = () => run($("make-recovery-codes"), async () => {
    const codes = await client.createRecoveryCodes();
    $("recovery-codes").replaceChildren(...codes.map((c) => Object.assign(document.createElement("li"), { textContent: c })));
    $("recovery-codes").hidden = false;
    $("me-codes-left").textContent = String(codes.length);
  });

  await run(null, render);
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  showError(err);
  document.body.dataset.ready = "error";
});
