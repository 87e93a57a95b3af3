// Makes the ipywidgets HTML manager (_static/vendor/html-manager/embed-amd.js) work offline and
// with MathJax 3. Loaded after require.js and before embed-amd.js, only on pages that embed widget
// state (see nb_ipywidgets_js in _config.yml).
(function () {
  "use strict";

  // 1. Assets. embed-amd.js defines named AMD modules (@jupyter-widgets/html-manager,
  //    .../html-manager/dist/libembed-amd, base, controls), and webpack inside each derives its
  //    public path (where the Font Awesome fonts referenced by its CSS live) from the directory of
  //    RequireJS's URL for that module, which by default is relative to the *page*
  //    (notebooks/@jupyter-widgets/...). Map both module prefixes onto the vendored folder, so
  //    every module's directory is _static/vendor/html-manager/.
  var base = new URL("vendor/html-manager/", document.currentScript.src).href;
  var dir = base.replace(/\/$/, "");
  window.__jupyter_widgets_assets_path__ = base;
  if (typeof window.require === "function" && window.require.config) {
    window.require.config({
      paths: { "@jupyter-widgets": dir, "@jupyter-widgets/html-manager/dist": dir },
    });
  }

  // 2. MathJax. The HTML manager typesets widget labels with the MathJax 2 API
  //    (MathJax.Hub.Queue(["Typeset", MathJax.Hub, el])); Sphinx loads MathJax 3, which has no
  //    Hub, so every labelled widget would throw. MathJax 3 (loaded with `defer`) has replaced
  //    window.MathJax by DOMContentLoaded, and widgets render on window load: add a Hub that
  //    forwards to MathJax 3's typesetPromise in between.
  document.addEventListener("DOMContentLoaded", function () {
    var MJ = window.MathJax;
    if (!MJ || MJ.Hub || typeof MJ.typesetPromise !== "function") return;
    MJ.Hub = {
      Queue: function () {
        var elements = [];
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) elements.push(job[2]);
        });
        if (!elements.length) return;
        MJ.startup.promise = MJ.startup.promise
          .then(function () { return MJ.typesetPromise(elements); })
          .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
      },
    };
  });
})();
