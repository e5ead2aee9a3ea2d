// The lead's pages: a copy button for secrets shown once (API keys).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const status = document.getElementById("copy-status");
  const text = source ? source.textContent.trim() : "";
  const done = (message) => { if (status) status.textContent = message; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => done("Copied."), () => selectText(source, done));
  } else {
    selectText(source, done);
  }
});

function selectText(element, done) {
  // Without the clipboard API (plain http), select the key so Ctrl/Cmd+C copies it.
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    done(document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
  } catch (error) {
    done("Selected: press Ctrl+C to copy.");
  }
}

// The rubric page (review/lead/rubric_form.html): a section for some kinds of answer
// only names the mark its kind needs (data-kind-section: "has-options" for the options
// and their scale, "numeric" for the lowest, highest and step), and each <option> of
// the kind select carries its kind's marks (data-has-options, data-numeric, from the
// score kinds); the sections follow the select. The server renders the same after a
// submit, so the page without the script agrees once the form is sent. Hidden fields
// keep what was typed, for when the kind changes back.
function showKindSections() {
  const kind = document.getElementById("r-type");
  if (!kind) return;
  const choice = kind.options[kind.selectedIndex];
  document.querySelectorAll("[data-kind-section]").forEach((section) => {
    section.hidden = !!choice && !choice.hasAttribute(`data-${section.dataset.kindSection}`);
  });
}
document.addEventListener("change", (event) => {
  if (event.target.id === "r-type") showKindSections();
});
// Also as the page opens: Back and Forward may bring the form back as it was left.
window.addEventListener("pageshow", showKindSections);
showKindSections();

// The board's live part polls every few seconds (review/lead/_board_live.html), but not
// while someone is in one of its forms: the swap would take the form from under them.
document.addEventListener("htmx:beforeRequest", (event) => {
  const live = event.detail.elt;
  if (live.id === "board-live" && live.querySelector("form:focus-within")) event.preventDefault();
});

// The board's selection (review/lead/board.html). The live part of the board is
// replaced every few seconds, so the selection is kept here, not in its checkboxes:
// after each swap the new cards are ticked again from it. Selected items no longer
// shown (moved past the first cards of a column, or out of the open columns) stay
// selected and are posted as hidden fields; the server says which it could not change.
(() => {
  const form = document.getElementById("board-bulk");
  if (!form) return;
  const status = document.getElementById("board-selection");
  const hidden = document.getElementById("bulk-hidden");
  const columnInput = document.getElementById("bulk-column");
  const selected = new Set();
  // "Select all N in <column>": the whole column, not only the cards shown; the server
  // asks to confirm with the count, then changes what the column holds at that moment.
  let column = "";
  const itemBoxes = (column) =>
    document.querySelectorAll(
      column
        ? `#board-live input.select-item[data-column="${column}"]`
        : "#board-live input.select-item"
    );
  // A page answered after a refused change comes back with its selection ticked.
  itemBoxes().forEach((box) => { if (box.checked) selected.add(box.value); });
  hidden.querySelectorAll("input").forEach((input) => selected.add(input.value));

  function say(text) {
    if (status.textContent !== text) status.textContent = text;
  }

  function restore() {
    const shown = new Set();
    itemBoxes().forEach((box) => {
      box.checked = selected.has(box.value);
      box.closest(".board-card")?.classList.toggle("selected", box.checked);
      shown.add(box.value);
    });
    document.querySelectorAll("#board-live input.select-column").forEach((all) => {
      const boxes = [...itemBoxes(all.dataset.column)];
      const ticked = boxes.filter((box) => box.checked).length;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    });
    document.querySelectorAll("#board-live .select-whole-column").forEach((button) => {
      const all = document.getElementById(`all-${button.dataset.column}`);
      const whole = column === button.dataset.column;
      button.hidden = !whole && !(all && all.checked);
      button.setAttribute("aria-pressed", whole ? "true" : "false");
      button.textContent = whole
        ? `Select only the ${button.dataset.shown} shown`
        : `Select all ${button.dataset.count} in ${button.dataset.label}`;
    });
    columnInput.value = column;
    if (column) {
      const button = document.getElementById(`whole-${column}`);
      hidden.replaceChildren();
      if (button) {
        say(`All ${button.dataset.count} items in ${button.dataset.label} are selected, not only those shown. Apply shows the count to confirm.`);
        return;
      }
      column = "";  // the column now fits on the board: back to the cards ticked
      columnInput.value = "";
    }
    const away = [...selected].filter((id) => !shown.has(id));
    hidden.replaceChildren(
      ...away.map((id) => {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = "item_id";
        input.value = id;
        return input;
      })
    );
    const count = selected.size;
    if (count === 0) {
      say("Nothing selected. Tick the open items to change (pending, in progress, submitted), or “select all” in a column.");
    } else {
      const note = away.length ? ` (${away.length} not shown on the board now)` : "";
      say(`${count} item${count === 1 ? "" : "s"} selected${note}.`);
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("#board-live .select-whole-column");
    if (!button) return;
    column = column === button.dataset.column ? "" : button.dataset.column;
    if (column) {
      selected.clear();
      itemBoxes(column).forEach((item) => selected.add(item.value));
    }
    restore();
  });
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.matches("#board-live input.select-item, #board-live input.select-column")) {
      column = "";
    }
    if (box.matches("#board-live input.select-item")) {
      if (box.checked) selected.add(box.value);
      else selected.delete(box.value);
    } else if (box.matches("#board-live input.select-column")) {
      itemBoxes(box.dataset.column).forEach((item) => {
        if (box.checked) selected.add(item.value);
        else selected.delete(item.value);
      });
    } else {
      return;
    }
    restore();
  });
  document.getElementById("bulk-clear").addEventListener("click", () => {
    column = "";
    selected.clear();
    restore();
  });
  // After every refresh of the live part (htmx swaps it whole; focus stays on the
  // checkbox of the same id).
  document.addEventListener("htmx:afterSettle", restore);
  document.addEventListener("htmx:load", restore);
  restore();
})();
