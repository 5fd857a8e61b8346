// Picking another master keeps that master's values wherever it has one.
document.querySelectorAll('input[name="master"]').forEach((master) => {
  master.addEventListener("change", () => {
    document.querySelectorAll('input[type="radio"][name^="field_"][value="' + master.value + '"]').forEach((radio) => {
      if (!radio.dataset.blank) radio.checked = true;
    });
  });
});
