#!/usr/bin/env bash
# Regenerates the Python code of every contract under protos/helpdesk into the
# helpdesk-api distribution (protos/python). Run through `make proto`; the output
# is committed, and `make test` fails when it differs from what this produces.
set -euo pipefail
cd "$(dirname "$0")"
out=python/src
rm -rf "$out/helpdesk/api"
mkdir -p "$out"
mapfile -t all < <(find helpdesk -name '*.proto' | sort)
# gRPC stubs only for files that declare a service.
mapfile -t with_service < <(grep -l '^service ' "${all[@]}" | sort)
python -m grpc_tools.protoc -I . --python_out="$out" --mypy_out="$out" "${all[@]}"
python -m grpc_tools.protoc -I . --grpc_python_out="$out" --mypy_grpc_out="$out" "${with_service[@]}"
touch "$out/helpdesk/api/py.typed"
