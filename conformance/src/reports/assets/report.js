// Filters the scenario runs by outcome (?show=fail,error or #show=… pre-selects), expands
// and collapses them, and opens the run a link points at even if its outcome is hidden.
(function () {
  "use strict";
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#filters input[name=kind]"));
  var runs = Array.prototype.slice.call(document.querySelectorAll("#run-list > details"));
  var shown = document.getElementById("shown");
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var n = 0;
    runs.forEach(function (r) {
      r.hidden = !on[r.getAttribute("data-kind")];
      if (!r.hidden) { n += 1; }
    });
    shown.textContent = n + " of " + runs.length + " runs shown";
  }
  function fromUrl() {
    var m = (location.search + "&" + location.hash).match(/[?&#]show=([a-z,-]*)/);
    if (m) {
      var wanted = m[1].split(",");
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.value) >= 0; });
    }
  }
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target || target.tagName !== "DETAILS") { return; }
    if (target.hidden) {
      boxes.forEach(function (b) { if (b.value === target.getAttribute("data-kind")) { b.checked = true; } });
      apply();
    }
    target.open = true;
    target.scrollIntoView();
  }
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  document.getElementById("expand-all").addEventListener("click", function () {
    runs.forEach(function (r) { if (!r.hidden) { r.open = true; } });
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    runs.forEach(function (r) { r.open = false; });
  });
  window.addEventListener("hashchange", reveal);
  document.getElementById("filters").hidden = false;
  fromUrl();
  apply();
  reveal();
})();
