# Sourced by the mPLUG-Owl2 tools: upstream's checkout (X-PLUG/mPLUG-Owl at 0f3068fd, never
# committed here) in $MPLUG_OWL_DIR (set: used as it is; unset: cloned into
# tools/.cache/mPLUG-Owl), its pinned venv (tools/venv_owl2.sh: $venv), and $owl_path for
# PYTHONPATH. Developers only; `make test` never needs it.
owl_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${MPLUG_OWL_DIR:-}" ]; then
    MPLUG_OWL_DIR="$owl_tools/.cache/mPLUG-Owl"
    if [ ! -d "$MPLUG_OWL_DIR/mPLUG-Owl2" ]; then
        mkdir -p "$owl_tools/.cache"
        git clone -q https://github.com/X-PLUG/mPLUG-Owl "$MPLUG_OWL_DIR"
    fi
    git -C "$MPLUG_OWL_DIR" -c advice.detachedHead=false checkout -q 0f3068fd
fi
[ -d "$MPLUG_OWL_DIR/mPLUG-Owl2/mplug_owl2" ] || { echo "no mPLUG-Owl2/mplug_owl2 under $MPLUG_OWL_DIR" >&2; exit 1; }
export MPLUG_OWL_DIR
. "$owl_tools/venv_owl2.sh"
owl_path="$MPLUG_OWL_DIR/mPLUG-Owl2${PYTHONPATH:+:$PYTHONPATH}"
