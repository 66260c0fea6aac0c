// Drives Microsoft's real 1DS JavaScript SDK (@microsoft/1ds-core-js + @microsoft/1ds-post-js,
// versions pinned in package.json) against the lab, through the lab's CONNECT proxy, trusting
// only the lab's bundle. The SDK does everything itself (batching, headers, retries, the kill
// switch); this script only gives it a transport, because Node has no proxy-aware XHR: the
// SDK's documented `httpXHROverride` hook receives each POST and we carry it over a CONNECT
// tunnel with Node's own `http` and `tls` modules.
//
// Usage: node drive.cjs <scenario>   with MDELAB_PROXY (host:port), MDELAB_CA (PEM path),
// MDELAB_COLLECTOR (https URL) and MDELAB_TENANT (the instrumentation key) in the environment.
// Scenarios:
//   upload   track 50 events, flush, wait until the SDK reports them sent.
//   kill     track 10 events (the lab answers with kill-tokens for our tenant, 60 s), then 5
//            more: the SDK must drop the later events without sending them.
//   kill-this-request  the same with kill-duration "this-request-only": the answered batch is
//            dropped, later events are sent.
//   retry    track 5 events (the lab answers 503 + Retry-After once): the SDK must retry.
// Output: one JSON object per line: {"post": …} for each request the SDK made and its answer,
// {"sent": n}, {"discarded": n, "reason": r} for the SDK's notifications, {"done": …} last.
"use strict";

const http = require("node:http");
const tls = require("node:tls");
const fs = require("node:fs");
const { AppInsightsCore } = require("@microsoft/1ds-core-js");
const { PostChannel } = require("@microsoft/1ds-post-js");

const scenario = process.argv[2] || "upload";
const [proxyHost, proxyPort] = process.env.MDELAB_PROXY.split(":");
const ca = fs.readFileSync(process.env.MDELAB_CA);
const collector = new URL(process.env.MDELAB_COLLECTOR);
const tenant = process.env.MDELAB_TENANT;
const deadline = Date.now() + Number(process.env.MDELAB_DEADLINE_MS || 60000);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// One POST over a fresh CONNECT tunnel and TLS session (as a proxy-bound WinHTTP client does).
function postThroughProxy(url, headers, body, done) {
  const target = new URL(url);
  const port = Number(target.port || 443);
  const connect = http.request({
    host: proxyHost,
    port: Number(proxyPort),
    method: "CONNECT",
    path: `${target.hostname}:${port}`,
    headers: { Host: `${target.hostname}:${port}` },
  });
  connect.setTimeout(15000, () => connect.destroy(new Error("proxy timeout")));
  connect.on("error", (err) => done(0, {}, String(err)));
  connect.on("connect", (res, socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      return done(0, {}, `proxy answered ${res.statusCode}`);
    }
    const tlsSocket = tls.connect({ socket, servername: target.hostname, ca });
    tlsSocket.on("error", (err) => done(0, {}, String(err)));
    tlsSocket.on("secureConnect", () => {
      const req = http.request({
        createConnection: () => tlsSocket,
        host: target.hostname,
        method: "POST",
        path: target.pathname + target.search,
        headers: { ...headers, "Content-Length": Buffer.byteLength(body) },
      });
      req.setTimeout(15000, () => req.destroy(new Error("request timeout")));
      req.on("error", (err) => done(0, {}, String(err)));
      req.on("response", (resp) => {
        const chunks = [];
        resp.on("data", (c) => chunks.push(c));
        resp.on("end", () => {
          tlsSocket.end();
          done(resp.statusCode, resp.headers, Buffer.concat(chunks).toString("utf8"));
        });
      });
      req.end(body);
    });
  });
  connect.end();
}

const core = new AppInsightsCore();
const post = new PostChannel();
const counts = { sent: 0, discarded: 0, posts: 0 };

const sendPOST = (payload, oncomplete) => {
  const body = typeof payload.data === "string" ? payload.data : Buffer.from(payload.data);
  const started = Date.now();
  postThroughProxy(payload.urlString, payload.headers || {}, body, (status, headers, text) => {
    counts.posts += 1;
    emit({
      post: {
        at_ms: started,
        status,
        url: payload.urlString,
        request_headers: payload.headers || {},
        kill_tokens: headers["kill-tokens"] || null,
        kill_duration: headers["kill-duration"] || null,
        retry_after: headers["retry-after"] || null,
        body: text,
      },
    });
    oncomplete(status, headers, text);
  });
};

core.initialize(
  {
    instrumentationKey: tenant,
    endpointUrl: collector.href,
    extensions: [post],
    extensionConfig: {
      [post.identifier]: {
        alwaysUseXhrOverride: true,
        httpXHROverride: { sendPOST },
      },
    },
  },
  [],
);
core.addNotificationListener({
  eventsSent: (events) => {
    counts.sent += events.length;
    emit({ sent: events.length, ikey: events[0] && events[0].iKey });
  },
  eventsDiscarded: (events, reason) => {
    counts.discarded += events.length;
    emit({ discarded: events.length, reason });
  },
});

function track(n, tag) {
  for (let i = 0; i < n; i++) {
    core.track({
      name: "Mdelab.JsSdk",
      baseData: {},
      data: { scenario, tag, index: i, flag: i % 2 === 0, ratio: i / 4 },
    });
  }
  post.flush();
}

function waitFor(cond, then) {
  const tick = () => {
    if (cond()) return then();
    if (Date.now() > deadline) {
      emit({ done: { timeout: true, ...counts } });
      process.exit(2);
    }
    setTimeout(tick, 50);
  };
  tick();
}

function finish() {
  emit({ done: { timeout: false, ...counts } });
  core.unload(false);
  process.exit(0);
}

switch (scenario) {
  case "upload":
    track(50, "upload");
    waitFor(() => counts.sent >= 50, finish);
    break;
  case "kill":
    // The lab answers the first batch with kill-tokens naming our tenant for 60 s: the SDK keeps
    // that answer's batch (it was accepted) and drops every later event of the tenant before
    // sending it (KillSwitch.js: a numeric kill-duration only marks the tenant killed).
    track(10, "first");
    waitFor(
      () => counts.sent >= 10,
      () => {
        const postsBefore = counts.posts;
        track(5, "after-kill");
        waitFor(
          () => counts.discarded >= 5,
          () => {
            emit({ posts_after_kill: counts.posts - postsBefore });
            finish();
          },
        );
      },
    );
    break;
  case "kill-this-request":
    // kill-duration "this-request-only": the SDK drops the answered batch's events (reported
    // discarded) and keeps sending later ones.
    track(10, "first");
    waitFor(
      () => counts.discarded >= 10,
      () => {
        track(5, "after");
        waitFor(() => counts.sent >= 5, finish);
      },
    );
    break;
  case "retry":
    track(5, "retry");
    waitFor(() => counts.sent >= 5, finish);
    break;
  default:
    emit({ error: `unknown scenario ${scenario}` });
    process.exit(2);
}
