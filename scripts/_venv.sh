# Shared by run.sh and test.sh: create .venv and install the project when pyproject changed.
ensure_venv() {
  local extras="$1"
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  if [ -z "$python" ]; then echo "error: Python 3.11 or newer is required" >&2; exit 1; fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  # Exact versions from constraints.txt, so a fresh machine installs what the suite passed with.
  local stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)${extras:+-$extras}"
  if [ ! -f "$stamp" ]; then
    echo "   installing the project and its dependencies into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # One line per package pip fetches, then what it installed: progress without pip's noise.
    .venv/bin/python -m pip install --progress-bar off -c constraints.txt -e ".${extras:+[$extras]}" \
      | sed -un 's/^Collecting \([^ ]*\).*/   collecting \1/p; s/^Successfully installed /   installed: /p'
    touch "$stamp"
  else
    echo "   .venv is up to date with pyproject.toml"
  fi
}
