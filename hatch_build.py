"""Build hook: compile the optional C extension ``autotts.env._judgedc``.

Why a hook and not a build system: the extension is one C file with no dependency but
the Python headers, so the hook calls the C compiler Python itself was built with
(``sysconfig``'s ``LDSHARED``) and nothing else. It speeds up the candidate side of the
discovery judge (:mod:`autotts.env.judged`); without it every result is the same and the
judge runs in pure Python, slower. So a failed compilation warns and builds a pure-Python
package instead of failing the install; ``AUTOTTS_NO_EXTENSION=1`` skips it on purpose.

Editable installs (``pip install -e .``) compile the module next to its source
(``src/autotts/env/``, ignored by git), where the editable path finds it; reinstall after
editing the C file. Regular wheels get it as a platform-specific file (built in a
temporary directory, removed once the wheel is written).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_SOURCE = Path("src/autotts/env/_judgedc.c")
_MODULE = "autotts/env/_judgedc"


class JudgedExtensionHook(BuildHookInterface):  # type: ignore[misc]
    """Compile ``src/autotts/env/_judgedc.c`` for the wheel (or in place for an editable install)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile before the wheel is assembled; on failure warn and leave the package pure Python."""
        if self.target_name != "wheel" or os.environ.get("AUTOTTS_NO_EXTENSION"):
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        ldshared = sysconfig.get_config_var("LDSHARED")
        if not suffix or not ldshared or sys.byteorder != "little":
            _warn("no C toolchain description for this Python (or a big-endian machine)")
            return
        root = Path(self.root)
        source = root / _SOURCE
        if version == "editable":
            out = source.with_name("_judgedc" + suffix)
        else:
            self._tmp = tempfile.mkdtemp(prefix="autotts-ext-")
            out = Path(self._tmp) / ("_judgedc" + suffix)
        include = sysconfig.get_paths()["include"]
        cmd = [*shlex.split(ldshared), "-O2", "-fPIC", f"-I{include}", str(source), "-o", str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            _warn(f"{exc}")
            return
        if done.returncode != 0:
            _warn(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
            return
        if version != "editable":
            build_data["force_include"][str(out)] = _MODULE + suffix
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the temporary build directory once the wheel holds the module."""
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _warn(why: str) -> None:
    print(
        f"autotts: the C extension autotts.env._judgedc was not built ({why}); "
        "the discovery judge runs in pure Python (same results, slower).",
        file=sys.stderr,
    )
