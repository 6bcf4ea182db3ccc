"""Regenerate the Python protobuf/gRPC modules from etcd_api.proto (``make proto``).

The generated modules are committed so that installing edgeplane needs no code generator.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).parent


def main() -> int:
    status = protoc.main(
        ["grpc_tools.protoc", f"-I{HERE}", f"--python_out={HERE}", f"--grpc_python_out={HERE}", str(HERE / "etcd_api.proto")]
    )
    if status != 0:
        return status
    # grpc_tools emits an absolute import of the sibling module; make it package-relative.
    stubs = HERE / "etcd_api_pb2_grpc.py"
    stubs.write_text(re.sub(r"^import etcd_api_pb2 as", "from . import etcd_api_pb2 as", stubs.read_text(), flags=re.M))
    return 0


if __name__ == "__main__":
    sys.exit(main())
