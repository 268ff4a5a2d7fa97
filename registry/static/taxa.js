// Taxon picker: suggestions while typing, each added to the list with one click.
// Without JavaScript the "Find taxa" button does the same search on the server.
(function () {
  "use strict";
  var input = document.getElementById("taxon_query");
  var list = document.getElementById("taxa");
  var results = document.getElementById("taxon-results");
  if (!input || !list || !results || !window.fetch) { return; }
  var timer = null;
  var latest = 0;

  function add(name) {
    var names = list.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    if (names.indexOf(name) === -1) { names.push(name); }
    list.value = names.join("\n");
  }

  function show(taxa) {
    results.textContent = "";
    var ul = document.createElement("ul");
    ul.className = "taxa picker";
    taxa.forEach(function (taxon) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small";
      button.textContent = input.dataset.addLabel;
      button.addEventListener("click", function () { add(taxon.name); button.disabled = true; });
      var name = document.createElement("i");
      name.textContent = taxon.name;
      li.appendChild(button);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(name);
      if (taxon.common.length) { li.appendChild(document.createTextNode(" · " + taxon.common.join(" · "))); }
      ul.appendChild(li);
    });
    results.appendChild(ul);
  }

  function search() {
    var query = input.value.trim();
    if (query.length < 2) { results.textContent = ""; return; }
    var ticket = ++latest;
    fetch(input.dataset.taxaUrl + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (taxa) { if (ticket === latest) { show(taxa); } })
      .catch(function () { /* the server-side search button still works */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", function (event) {
    // Enter searches instead of submitting the whole form.
    if (event.key === "Enter") { event.preventDefault(); search(); }
  });
})();
