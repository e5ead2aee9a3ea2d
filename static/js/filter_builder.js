// The trace filter builder (traces/_filter_builder.html), wherever a filter is built: the
// explorer, routing rules, adding matching traces to a queue. Choosing a row's field puts
// that field's controls in the row (its operators, a picker or the right input for the
// value, from the page's <template>s); rows are added and removed in place. Without this
// script the rows post as typed and the server answers the same filter.
//
// A <select data-signal-presets> (a routing rule's signal) starts the condition its
// chosen option names (data-field, data-op, data-value, data-key) unless a row already
// is on that field. Every change is announced as an "input" event on the form, so a
// live preview (htmx) follows it.
(() => {
  const builder = document.getElementById("filter-builder");
  if (!builder) return;
  const list = builder.querySelector("#conditions");
  const blank = builder.querySelector("#new-condition").cloneNode(true);
  blank.removeAttribute("id");
  const changed = () => builder.dispatchEvent(new Event("input", { bubbles: true }));

  const showControls = (row) => {
    const field = row.querySelector(".cond-field").value;
    const slot = row.querySelector(".cond-controls");
    const source = field
      ? document.getElementById(`cond-${field}`)
      : blank.querySelector(".cond-controls");
    slot.classList.toggle("unchosen", !field);
    if (!source) return;
    const copy = (source.content || source).cloneNode(true);
    slot.replaceChildren(...Array.from(copy.childNodes));
    row.classList.remove("has-error");
    row.querySelectorAll(".field-error").forEach((e) => e.remove());
  };

  const enable = (row) => {
    const remove = row.querySelector(".cond-remove");
    remove.hidden = false;
    remove.addEventListener("click", () => {
      const rows = list.querySelectorAll(".condition");
      if (rows.length > 1) {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        next.querySelector(".cond-field").focus();
      } else {
        row.querySelector(".cond-field").value = "";
        showControls(row);
      }
      changed();
    });
    row.querySelector(".cond-field").addEventListener("change", () => showControls(row));
  };

  const addRow = () => {
    const row = blank.cloneNode(true);
    list.append(row);
    enable(row);
    return row;
  };

  const setValue = (row, selector, value) => {
    const control = row.querySelector(selector);
    if (control && value !== undefined && value !== "") control.value = value;
  };

  // A row on `field` with its operator, value and key set (the last row if it is unused).
  const addCondition = ({ field, op, value, key }) => {
    const rows = Array.from(list.querySelectorAll(".condition"));
    const last = rows[rows.length - 1];
    const row = last && !last.querySelector(".cond-field").value ? last : addRow();
    row.querySelector(".cond-field").value = field;
    showControls(row);
    setValue(row, "[name=co]", op);
    setValue(row, "[name=ck]", key);
    setValue(row, "[name=cv]", value);
    changed();
    const empty = row.querySelector("[name=ck]:not([type=hidden])");
    const target = empty && !empty.value ? empty : row.querySelector("[name=cv]");
    if (target) target.focus();
  };

  list.querySelectorAll(".condition").forEach((row) => {
    enable(row);
    if (!row.querySelector(".cond-field").value) showControls(row);
  });
  const add = builder.querySelector("#add-condition");
  add.hidden = false;
  add.addEventListener("click", () => addRow().querySelector(".cond-field").focus());
  builder.querySelectorAll(".no-script-hint").forEach((hint) => (hint.hidden = true));

  document.querySelectorAll("select[data-signal-presets]").forEach((signal) => {
    signal.addEventListener("change", () => {
      const preset = signal.selectedOptions[0] && signal.selectedOptions[0].dataset;
      if (!preset || !preset.field) return;
      const taken = Array.from(list.querySelectorAll(".cond-field")).some(
        (f) => f.value === preset.field,
      );
      if (!taken) addCondition(preset);
    });
  });
  builder.dataset.ready = "true";
})();
