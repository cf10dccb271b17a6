// Table filters and sidebar highlighting; no external dependencies.
(function () {
  "use strict";
  document.querySelectorAll("input.table-filter").forEach(function (input) {
    var table = document.getElementById(input.dataset.table);
    var counter = document.getElementById(input.dataset.table + "-count");
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    function apply() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var hit = q === "" || row.textContent.toLowerCase().indexOf(q) !== -1;
        row.style.display = hit ? "" : "none";
        if (hit) { shown += 1; }
      });
      if (counter) {
        var total = parseInt(table.dataset.total || rows.length, 10);
        var text = shown.toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") +
          " rows shown";
        if (total > rows.length) {
          text += " (this page holds " + rows.length.toLocaleString("en-US") + " of the " +
            total.toLocaleString("en-US") + " rows)";
        }
        counter.textContent = text;
      }
    }
    input.addEventListener("input", apply);
    apply();
  });
  var links = document.querySelectorAll("#sidebar a");
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) { return; }
        links.forEach(function (a) {
          a.classList.toggle("active", a.getAttribute("href") === "#" + e.target.id);
        });
      });
    }, { rootMargin: "0px 0px -70% 0px" });
    document.querySelectorAll("main section").forEach(function (s) { observer.observe(s); });
  }
})();
