// Hides the rows every broker passes, or those where all brokers agree
// (?only=nonpass or ?only=differing pre-selects).
(function () {
  "use strict";
  var nonpass = document.getElementById("only-nonpass");
  var differing = document.getElementById("only-differing");
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.matrix tbody tr"));
  var shown = document.getElementById("rows-shown");
  function apply() {
    var n = 0;
    rows.forEach(function (row) {
      var hide = (nonpass.checked && row.getAttribute("data-nonpass") !== "1") ||
        (differing.checked && row.getAttribute("data-differs") !== "1");
      row.hidden = hide;
      if (!hide) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " statements shown";
  }
  var m = (location.search + "&" + location.hash).match(/[?&#]only=([a-z,]*)/);
  if (m) {
    var wanted = m[1].split(",");
    nonpass.checked = wanted.indexOf("nonpass") >= 0;
    differing.checked = wanted.indexOf("differing") >= 0;
  }
  nonpass.addEventListener("change", apply);
  differing.addEventListener("change", apply);
  document.getElementById("row-filters").hidden = false;
  apply();
})();
