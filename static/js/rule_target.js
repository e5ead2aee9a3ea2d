// A routing rule's form (review/lead/_rule_form.html): choosing what it routes, traces or
// threads (<select data-rule-target>), shows that target's fields only: a thread rule's
// conditions ([data-rule-group=thread]), a trace rule's strategy ([data-rule-group=trace]).
// Without this script every field shows and the server reads those of the target chosen.
(() => {
  const target = document.querySelector("select[data-rule-target]");
  if (!target) return;
  const show = () => {
    const chosen = target.value || "trace";
    document.querySelectorAll("[data-rule-group]").forEach((field) => {
      field.hidden = field.dataset.ruleGroup !== chosen;
    });
  };
  target.addEventListener("change", show);
  show();
})();
