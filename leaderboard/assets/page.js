// mathusereval leaderboard page: sort tables by a header click, filter rows by model or sample text,
// open a model's details from its link. Inlined into the page; no network, no libraries.
"use strict";

function sortTable(th) {
  const table = th.closest("table");
  const index = Array.prototype.indexOf.call(th.parentNode.children, th);
  const descending = th.getAttribute("aria-sort") !== "descending";
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const key = (row) => {
    const cell = row.children[index];
    const value = cell.dataset.v;
    return value === undefined ? cell.textContent.trim().toLowerCase() : value === "" ? null : Number(value);
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1; // missing values last
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach((row) => body.appendChild(row));
}

function applyFilter(text) {
  const needle = text.trim().toLowerCase();
  document.querySelectorAll("[data-filter]").forEach((el) => {
    el.hidden = needle !== "" && !el.dataset.filter.toLowerCase().includes(needle);
  });
}

function openFromHash() {
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target && target.tagName === "DETAILS") {
    target.open = true;
    target.scrollIntoView();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable th").forEach((th) => th.addEventListener("click", () => sortTable(th)));
  const filter = document.getElementById("filter");
  if (filter) filter.addEventListener("input", () => applyFilter(filter.value));
  window.addEventListener("hashchange", openFromHash);
  openFromHash();
});
