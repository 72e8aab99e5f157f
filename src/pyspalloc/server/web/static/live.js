/* Live updates for job and machine pages: every few seconds, fetch the page again and
   replace the regions marked data-live. Forms outside those regions are left alone. */
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh")) || 0;
  if (!seconds || !window.fetch || !window.DOMParser) { return; }
  var busy = false;
  function update() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.text();
    }).then(function (text) {
      var fresh = new DOMParser().parseFromString(text, "text/html");
      var regions = document.querySelectorAll("[data-live]");
      for (var i = 0; i < regions.length; i++) {
        var old = regions[i];
        var replacement = fresh.getElementById(old.id);
        if (replacement && replacement.innerHTML !== old.innerHTML) {
          old.innerHTML = replacement.innerHTML;
        }
      }
      var stamp = document.getElementById("updated");
      if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString(); }
    }).catch(function () {
      var stamp = document.getElementById("updated");
      if (stamp) { stamp.textContent = "live updates paused"; }
    }).then(function () { busy = false; });
  }
  window.setInterval(update, seconds * 1000);
})();
