// Typeset the formulas with KaTeX, served by the site itself (docs/javascripts/katex, KaTeX 0.19.1 from npm).
// pymdownx.arithmatex (generic mode) has wrapped $...$ in <span class="arithmatex">\(...\)</span> and
// $$...$$ in <div class="arithmatex">\[...\]</div>; only those elements are touched, never code blocks.
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: true,
    });
  });
  // and again once KaTeX's fonts are in (the first measuring starts their loading): before, the formulas
  // are set in another font, of other widths
  fitFormulas();
  document.fonts.ready.then(fitFormulas);
});

// KaTeX does not break a display formula into lines, and a sum over four indices is wider than a phone
// (375 px): such a formula is scaled down until it fits its box, to no less than MIN_SCALE of its size.
// One that would need more keeps that size and scrolls sideways in its box, as Material lets it.
var MIN_SCALE = 0.6;

function fitFormulas() {
  document.querySelectorAll("div.arithmatex .katex-display > .katex").forEach(function (formula) {
    var box = formula.parentElement;
    formula.style.fontSize = "";
    var natural = parseFloat(getComputedStyle(formula).fontSize), size = natural;
    // a formula's parts are not all scaled with its font size (rules, spacing rounded to pixels): a second
    // step corrects for them
    for (var step = 0; step < 4 && box.scrollWidth > box.clientWidth && size > natural * MIN_SCALE; step++) {
      size = Math.max(natural * MIN_SCALE, size * box.clientWidth / box.scrollWidth);
      formula.style.fontSize = size + "px";
    }
  });
}

window.addEventListener("resize", fitFormulas);
// a formula in a closed solution (<details>) has no width to measure until it is opened
document.addEventListener("toggle", fitFormulas, true);
