"""Compiles every `.proto` under `proto/` into one generated Python package (`make proto`).

    python proto/compile.py services/epp/src/igw/epp/_generated

protoc runs with `-I proto`, so each file keeps its full proto path (`igw/epp/admin/v1/admin.proto`)
in the descriptor pool and its modules land at the same relative path under the output directory:
`igw.epp._generated.igw.epp.admin.v1.admin_pb2`. protoc writes the imports between generated
modules as absolute imports from the proto root (`from igw.epp.admin.v1 import admin_pb2`), which
would resolve into the hand-written `igw` packages, so every such line is rewritten to start from
the generated package (`from igw.epp._generated.igw.epp.admin.v1 import admin_pb2`).

The generated package's own `__init__.py` is hand-written and left alone. A test regenerates into
a temporary directory and compares the bytes with the committed files.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
DEFAULT_PACKAGE = "igw.epp._generated"
_ABSOLUTE_IMPORT = re.compile(r"^(from|import) igw\.", re.MULTILINE)


def compile_protos(out_dir: Path, package: str = DEFAULT_PACKAGE) -> list[Path]:
    """Generates `_pb2.py`, `_pb2.pyi` and `_pb2_grpc.py` for every proto into `out_dir`."""
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
        *protos,
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter and arguments
    generated = sorted(p for p in out_dir.rglob("*_pb2*.py*") if p.suffix in (".py", ".pyi"))
    for path in generated:
        text = path.read_text(encoding="utf-8")
        fixed = _ABSOLUTE_IMPORT.sub(rf"\1 {package}.igw.", text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")
    return generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--package", default=DEFAULT_PACKAGE, help="the out_dir's import name")
    args = parser.parse_args()
    compile_protos(args.out_dir, args.package)


if __name__ == "__main__":
    main()
