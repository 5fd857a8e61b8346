// "Add email / phone / address" on the contact form: a blank row from the formset's empty form.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-formset-add]");
  if (!button) return;
  const box = button.closest("[data-formset]");
  const prefix = box.dataset.formset;
  const total = box.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);
  const index = parseInt(total.value, 10);
  const html = box.querySelector("template[data-formset-empty]").innerHTML.replace(/__prefix__/g, index);
  box.querySelector("[data-formset-rows]").insertAdjacentHTML("beforeend", html);
  total.value = index + 1;
  const rows = box.querySelectorAll("[data-formset-row]");
  const first = rows[rows.length - 1].querySelector("input:not([type=hidden]):not([type=checkbox]), select");
  if (first) first.focus();
});
