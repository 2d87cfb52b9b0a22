#!/usr/bin/env bash
# Renders a step summary (the markdown the action appends to $GITHUB_STEP_SUMMARY) roughly as
# GitHub shows it, and takes a screenshot: a snapshot test checks the text, this shows the
# page (a table stretched by a digest, a blank header row, all-zero times are seen at once).
#
#   scripts/render-summary.sh SUMMARY.md OUT.png [WIDTH]
#
# markdown → HTML with python-markdown (`tables`, `fenced_code`, and `md_in_html` so the
# fenced block inside <details> is rendered, as GitHub does), a GitHub-like stylesheet, then
# headless Chromium; the bottom margin is cut off with Pillow. WIDTH (default 1000 px) is
# about the width of the summary pane on a desktop browser. <details> stay collapsed, as on
# GitHub; RENDER_OPEN_DETAILS=1 opens them.
#
# Needs python3 (venv), chromium (`apt-get install -y chromium`; `fonts-noto-color-emoji`
# for the title's icon). The venv (markdown, Pillow from PyPI) is made once, in
# $RENDER_SUMMARY_VENV (default ~/.cache/bluegreen-render-summary).
#
# Summaries from the integration tests: `BLUEGREEN_KEEP_SUMMARIES=DIR cargo test --test tests
# action` writes each snapshot's raw summary to DIR/NAME.md.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 SUMMARY.md OUT.png [WIDTH]" >&2
  exit 2
fi
summary=$(realpath "$1")
out=$(realpath -m "$2")
width=${3:-1000}
venv=${RENDER_SUMMARY_VENV:-$HOME/.cache/bluegreen-render-summary}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import markdown, PIL' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'markdown>=3.4' 'pillow>=10'
fi

work=$(mktemp -d /tmp/render-summary.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$venv/bin/python" - "$summary" "$work/summary.html" "${RENDER_OPEN_DETAILS:-}" <<'PY'
import sys
import markdown

source, target, open_details = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
text = open(source, encoding="utf-8").read()
# GitHub renders markdown between <details> tags (after a blank line); python-markdown does
# that only for blocks marked markdown="1".
opening = '<details open markdown="1">' if open_details else '<details markdown="1">'
text = text.replace("<details>", opening)
body = markdown.markdown(text, extensions=["tables", "fenced_code", "md_in_html"])
css = """
body { margin: 0; background: #fff; }
.markdown-body { box-sizing: border-box; padding: 24px 32px; color: #1f2328;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial,
  sans-serif, "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji";
  font-size: 14px; line-height: 1.5; word-wrap: break-word; }
h2 { font-size: 1.5em; font-weight: 600; padding-bottom: .3em; margin: 0 0 16px;
  border-bottom: 1px solid #d1d9e0b3; }
h3 { font-size: 1.25em; font-weight: 600; margin: 24px 0 16px; }
p, table, pre, details, blockquote { margin: 0 0 16px; }
a { color: #0969da; text-decoration: none; }
code { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono",
  monospace; font-size: 85%; padding: .2em .4em; border-radius: 6px;
  background: rgba(129, 139, 152, .12); white-space: break-spaces; }
pre { background: #f6f8fa; border-radius: 6px; padding: 16px; overflow: auto; }
pre code { background: transparent; padding: 0; font-size: 85%; white-space: pre; }
table { display: block; width: max-content; max-width: 100%; overflow: auto;
  border-spacing: 0; border-collapse: collapse; }
th { font-weight: 600; }
th, td { padding: 6px 13px; border: 1px solid #d1d9e0; }
tr { background: #fff; border-top: 1px solid #d1d9e0b3; }
tr:nth-child(2n) { background: #f6f8fa; }
blockquote { padding: 0 1em; color: #59636e; border-left: .25em solid #d1d9e0; }
summary { cursor: pointer; }
"""
page = f"""<!doctype html>
<html><head><meta charset="utf-8"><style>{css}</style></head>
<body><div class="markdown-body">{body}</div></body></html>
"""
open(target, "w", encoding="utf-8").write(page)
PY

# Tall enough for any summary; the empty bottom is cut off below.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$width,4000" --screenshot="$work/full.png" \
  "file://$work/summary.html" >"$work/chromium.log" 2>&1 || {
  cat "$work/chromium.log" >&2
  exit 1
}

"$venv/bin/python" - "$work/full.png" "$out" <<'PY'
import sys
from PIL import Image, ImageChops

image = Image.open(sys.argv[1]).convert("RGB")
blank = Image.new("RGB", image.size, (255, 255, 255))
box = ImageChops.difference(image, blank).getbbox()
bottom = min(image.height, (box[3] if box else 0) + 24)
image.crop((0, 0, image.width, max(bottom, 1))).save(sys.argv[2])
print(f"render-summary: {sys.argv[2]} ({image.width}x{bottom})")
PY
