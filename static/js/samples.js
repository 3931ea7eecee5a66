// The sample photographs under an upload panel (templates/partials/samples.html): a click fetches
// the photo from static/ and hands it, as a File, to the same function a chosen or dropped file
// goes to (predict.js), so the API gets the same bytes and gives the same answer as an upload.

export function wireSamples(root, input, run, fail) {
  const buttons = [...root.querySelectorAll('[data-sample-url]')];
  if (!buttons.length) return;
  // Usable exactly when the file input is: predict.js disables it while no net can predict.
  const follow = () => buttons.forEach((button) => { button.disabled = input.disabled; });
  new MutationObserver(follow).observe(input, { attributes: true, attributeFilter: ['disabled'] });
  follow();
  for (const button of buttons) {
    button.addEventListener('click', async () => {
      try {
        const response = await fetch(button.dataset.sampleUrl);
        if (!response.ok) throw new Error(`the server answered ${response.status}`);
        const blob = await response.blob();
        run(new File([blob], button.dataset.sampleName, { type: blob.type }));
      } catch (error) {
        fail(`Could not load the sample photo: ${error.message}`);
      }
    });
  }
}
