"""The committed `igw.epp._generated` package is what `make proto` makes from `proto/` today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "services/epp/src/igw/epp/_generated"


def generated_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every generated module (the hand-written `__init__` aside)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in (".py", ".pyi") and path != root / "__init__.py"
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "proto/compile.py"), str(tmp_path)], check=True)

    fresh = generated_files(tmp_path)
    assert "igw/epp/admin/v1/admin_pb2.py" in fresh
    assert generated_files(COMMITTED) == fresh, "run `make proto` and commit the result"


def test_generated_modules_import_each_other_inside_the_package() -> None:
    from igw.epp._generated.igw.epp.admin.v1 import admin_pb2, admin_pb2_grpc  # noqa: PLC0415

    assert admin_pb2_grpc.igw_dot_epp_dot_admin_dot_v1_dot_admin__pb2 is admin_pb2
    assert admin_pb2.DESCRIPTOR.name == "igw/epp/admin/v1/admin.proto"
