// The admin export page's "Select all" box. import-export wires it with an inline
// onchange handler, which the Content-Security-Policy (no 'unsafe-inline') blocks.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input.select-toggle").forEach((toggle) => {
    toggle.addEventListener("change", () => {
      document.querySelectorAll('.selectable-field-export-row input[type="checkbox"]').forEach((box) => {
        box.checked = toggle.checked;
      });
    });
  });
});
