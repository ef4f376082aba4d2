// prompts-diff.js: a line diff for prompt templates. The longest common
// subsequence of the two lists of lines (after the common head and tail are
// set aside) decides which lines are kept; the rest are removed (only in a)
// or added (only in b).

// Above this many cells (lines of a × lines of b) the middle parts are
// shown as wholly removed and added instead of being matched line by line.
const MAX_CELLS = 4_000_000;

/**
 * lineDiff compares two lists of lines. It returns the edit script in
 * order: {op: '=' | '-' | '+', text, a, b} with the 1-based line numbers
 * in a (for '=' and '-') and in b (for '=' and '+').
 */
export function lineDiff(a, b) {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const out = [];
  for (let i = 0; i < head; i++) out.push({ op: '=', text: a[i], a: i + 1, b: i + 1 });
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const n = am.length;
  const m = bm.length;
  if (n && m && n * m <= MAX_CELLS) {
    // len[i*(m+1)+j] is the LCS length of am[i:] and bm[j:].
    const w = m + 1;
    const len = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        len[i * w + j] = am[i] === bm[j] ? len[(i + 1) * w + j + 1] + 1 : Math.max(len[(i + 1) * w + j], len[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        out.push({ op: '=', text: am[i], a: head + i + 1, b: head + j + 1 });
        i++; j++;
      } else if (i < n && (j === m || len[(i + 1) * w + j] >= len[i * w + j + 1])) {
        out.push({ op: '-', text: am[i], a: head + i + 1 });
        i++;
      } else {
        out.push({ op: '+', text: bm[j], b: head + j + 1 });
        j++;
      }
    }
  } else {
    am.forEach((t, i) => out.push({ op: '-', text: t, a: head + i + 1 }));
    bm.forEach((t, j) => out.push({ op: '+', text: t, b: head + j + 1 }));
  }
  for (let k = 0; k < tail; k++) {
    out.push({ op: '=', text: a[a.length - tail + k], a: a.length - tail + k + 1, b: b.length - tail + k + 1 });
  }
  return out;
}
