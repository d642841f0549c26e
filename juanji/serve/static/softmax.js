// Softmax, step by step as the page writes it out: p = e^(z − max z) / Σ e^(z − max z) over the scores (logits) z.
// The largest score is subtracted first so that every e^… lies in (0, 1]: e^z itself overflows to Infinity once z
// passes about 709.8 (88.7 in float32), and Infinity / Infinity is NaN; the common factor e^(−max z) cancels in
// the division. The softmax panel (inside.js) shows these steps, and an exported page's predictions (local_api.js)
// are computed with them; the test of the panel checks them against juanji's softmax (functional/activation.py).

// {top: max z, shifted: z − max z, exps: e^(z − max z), total: their sum, probabilities}, each array in z's order.
export function softmax(scores) {
  const top = Math.max(...scores);
  const shifted = scores.map((z) => z - top);
  const exps = shifted.map(Math.exp);
  const total = exps.reduce((a, b) => a + b, 0);
  return {top, shifted, exps, total, probabilities: exps.map((e) => e / total)};
}
