"""``protos/`` as committed is the whole contract: a consumer in another language compiles it
with protoc's own well-known types and nothing else (no file ``make protos`` adds).

grpc_tools' protoc has only the Python generators built in; the descriptor set it writes with
every import is what any language's generator (or buf) reads, so it stands for the others."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).parents[2]
#: protoc's own include folder (google/protobuf/*.proto), as grpc_tools ships it.
WELL_KNOWN = Path(str(files("grpc_tools") / "_proto"))


def committed_protos() -> list[str]:
    """The ``.proto`` files git tracks under ``protos/`` (what a clone of the repository has)."""
    listed = subprocess.run(
        ["git", "ls-files", "--", "protos"], cwd=ROOT, check=True, capture_output=True,
        text=True).stdout.split()
    return [path for path in listed if path.endswith(".proto")]


def test_the_committed_protos_compile_with_only_protocs_well_known_types(tmp_path: Path) -> None:
    committed = committed_protos()
    assert "protos/spiris/skattbokslut/fortnox/v1/fortnox_service.proto" in committed
    for path in committed:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, tmp_path / path)
    out = tmp_path / "out"
    out.mkdir()
    every = [path.removeprefix("protos/") for path in committed]
    compiled = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path / 'protos'}",
         f"-I{WELL_KNOWN}", f"--python_out={out}", f"--pyi_out={out}",
         f"--descriptor_set_out={out / 'contract.pb'}", "--include_imports", *every],
        cwd=tmp_path, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert compiled.returncode == 0, compiled.stderr
    described = descriptor_pb2.FileDescriptorSet.FromString((out / "contract.pb").read_bytes())
    assert {"google/type/date.proto", "google/protobuf/timestamp.proto",
            "spiris/skattbokslut/fortnox/v1/fortnox_service.proto"} <= {
        file.name for file in described.file}
