// The trace explorer's rows from the keyboard (no inline script: the CSP allows our
// static files only). On a table marked data-row-keys:
//   j or ArrowDown   the next row          k or ArrowUp   the previous row
//   Enter            opens the selected row's first link
// Keys typed into a field, or with a modifier held, are left alone.
(() => {
  const table = document.querySelector("table[data-row-keys]");
  if (!table) return;
  const rows = Array.from(table.querySelectorAll("tbody tr"));
  if (!rows.length) return;
  let current = -1;

  const select = (index) => {
    if (index < 0 || index >= rows.length) return;
    if (current >= 0) {
      rows[current].classList.remove("selected");
      rows[current].removeAttribute("aria-selected");
    }
    current = index;
    const row = rows[current];
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  };

  table.addEventListener("click", (event) => {
    const row = event.target.closest("tbody tr");
    if (row) select(rows.indexOf(row));
  });

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target.closest("input, select, textarea, [contenteditable], button, summary")) return;
    if (target.closest("a") && !target.closest("table[data-row-keys]")) return;
    if (event.key === "j" || event.key === "ArrowDown") {
      select(Math.min(current + 1, rows.length - 1));
      event.preventDefault();
    } else if (event.key === "k" || event.key === "ArrowUp") {
      select(Math.max(current - 1, 0));
      event.preventDefault();
    } else if (event.key === "Enter" && current >= 0) {
      const link = rows[current].querySelector("a[href]");
      if (link) {
        event.preventDefault();
        window.location.assign(link.href);
      }
    }
  });
})();
