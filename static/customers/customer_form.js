// "Create a new account" replaces choosing one.
(function () {
  const box = document.getElementById("id_create_account"), pick = document.getElementById("id_account");
  if (!box || !pick) return;
  const sync = () => { pick.disabled = box.checked; if (box.checked) pick.value = ""; };
  box.addEventListener("change", sync); sync();
})();
// "Add" appends a blank row to a phones/emails formset.
document.querySelectorAll("[data-formset-add]").forEach((button) => {
  button.addEventListener("click", () => {
    const prefix = button.dataset.formsetAdd;
    const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
    const html = document.getElementById(`${prefix}-empty`).innerHTML.replace(/__prefix__/g, total.value);
    document.getElementById(`${prefix}-rows`).insertAdjacentHTML("beforeend", html);
    total.value = parseInt(total.value, 10) + 1;
  });
});
