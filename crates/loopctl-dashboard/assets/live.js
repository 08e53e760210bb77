// Live updates for the dashboard: the page is complete without this script. When the
// change stream named by <body data-live> reports a change, the page's own URL is fetched
// again and its live region swapped in, so cards move without a reload. Same origin only.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live");
  var since = document.body.getAttribute("data-since");
  if (url && since) { url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since); }
  var region = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!url || !region || !window.EventSource) { return; }
  var pending = null;
  var busy = false;
  function say(text) { if (state) { state.textContent = text; } }
  function refresh() {
    pending = null;
    if (busy) { pending = setTimeout(refresh, 200); return; }
    // Do not swap the region under a person typing into one of its forms.
    var active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      pending = setTimeout(refresh, 1000);
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (next) { region.innerHTML = next.innerHTML; document.body.setAttribute("data-updated", String(Date.now())); }
        say("Updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { say("Live updates paused; reload the page"); })
      .then(function () { busy = false; });
  }
  var source = null;
  function open() {
    source = new EventSource(url, { withCredentials: true });
    source.onopen = function () { say("Live"); document.body.setAttribute("data-live-open", "1"); };
    source.onmessage = function () { if (!pending) { pending = setTimeout(refresh, 150); } };
    source.onerror = function () { say("Reconnecting…"); };
  }
  // A browser keeps about six connections per server over HTTP/1.1: a stream left open by
  // a page the browser keeps in its back/forward cache would hold one, so a page closes its
  // stream when it is left and opens it again (after a refresh) when it is shown again.
  window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !source) { open(); refresh(); }
  });
  open();
})();
