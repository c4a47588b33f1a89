// streamwatch UI: progressive enhancement only. Pages work without this file.
// - Pages marked data-refresh reload every N seconds unless paused (the pause survives reloads)
//   or a <details> menu is open.
// - Copy buttons copy the field they name.
(function () {
  "use strict";
  var box = document.querySelector("[data-refresh]");
  if (box) {
    var seconds = parseInt(box.getAttribute("data-refresh"), 10) || 10;
    var button = document.getElementById("refresh-toggle");
    var paused = sessionStorage.getItem("sw-refresh-paused") === "1";
    var timer = null;
    function render() {
      button.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
      button.setAttribute("aria-pressed", paused ? "true" : "false");
    }
    function schedule() {
      if (timer) { clearTimeout(timer); timer = null; }
      // An open menu (the Monitoring row's snooze choices) would close under the reload: wait.
      if (!paused) { timer = setTimeout(function () { if (document.querySelector("details[open]")) { schedule(); } else { window.location.reload(); } }, seconds * 1000); }
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      paused = !paused;
      sessionStorage.setItem("sw-refresh-paused", paused ? "1" : "0");
      render();
      schedule();
    });
    render();
    schedule();
  }
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var field = document.getElementById(b.getAttribute("data-copy"));
      if (!field) { return; }
      field.select();
      var done = function () { b.textContent = "Copied"; };
      if (navigator.clipboard) { navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); }); }
      else { document.execCommand("copy"); done(); }
    });
  });
})();
