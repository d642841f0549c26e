// The copy button of an interactive Python example (```pycon) copies code that pastes into `python`: the
// statements without their >>> and ... prompts, without the output lines, and with a blank line after each
// compound statement (for, def, with...) that another statement follows — the interactive prompt ends a
// block at a blank line, and a line after it without one is a SyntaxError there.
// Material copies an element's data-copy attribute when the block has one, so each such block gets its
// source written there.
// A line is source as doctest reads it (and docs/hooks/downloads.py, which makes the page's script and
// notebook): ">>> " starts a statement, "... " lines right after it continue it.
var COMPOUND = /^(?:async\s+)?(?:for|while|if|with|def|class|try|match)\b|^@/;

function sessionSource(text) {
  var statements = [], inStatement = false;
  text.split("\n").forEach(function (line) {
    if (line === ">>>" || line.startsWith(">>> ")) {
      statements.push([line.slice(4)]);
      inStatement = true;
    } else if (inStatement && (line === "..." || line.startsWith("... "))) {
      statements[statements.length - 1].push(line.slice(4));
    } else {
      inStatement = false;
    }
  });
  return statements.map(function (lines, i) {
    var ended = COMPOUND.test(lines[0]) && i < statements.length - 1;
    return lines.join("\n") + (ended ? "\n" : "");
  }).join("\n") + "\n";
}

document$.subscribe(function () {
  document.querySelectorAll(".language-pycon pre > code").forEach(function (code) {
    code.setAttribute("data-copy", sessionSource(code.textContent));
  });
});
