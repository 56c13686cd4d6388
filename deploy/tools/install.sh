#!/usr/bin/env bash
# The chart checks' tools, built from their Go modules into $ROOT/.cache/bin, pinned:
#   - helm        (helm.sh/helm/v3, ./cmd/helm): lint and template the chart;
#   - kube-score  (github.com/zegl/kube-score, ./cmd/kube-score): static analysis of the
#     rendered objects (security context, probes, resources, NetworkPolicy, PDB, ...).
#     kube-linter would be the first choice, but the Go module proxy this project can reach
#     refuses every version of it (403 "This module version is not available", under both
#     golang.stackrox.io/kube-linter and github.com/stackrox/kube-linter), and it is not
#     published on any other registry we can reach; kube-score is the nearest equivalent
#     that the proxy serves.
#   - promtool    (github.com/prometheus/prometheus, ./cmd/promtool): `promtool test rules`
#     runs the alert rules' unit tests (tests/chart/alerts_test.yaml). Built with Prometheus's
#     own `remove_all_sd` tag: without the cloud service-discovery SDKs (which rule tests never
#     use) a cold build takes a third of the CPU time and a third of the memory.
#
# Usage: deploy/tools/install.sh [all|helm|kube-score|promtool|versions]
#   all (default)  install all three, each skipped when the pinned version is already there
#   versions       print the pinned versions as shell assignments (the tests read them)
#
# Like deploy/local/infra.sh installs FerretDB: `go mod download` of the exact version, then
# `go build` in the downloaded module. That needs no version-list lookup on the proxy (which
# some proxies refuse) and lets us pass the -ldflags the projects' own Makefiles pass.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/.cache/bin"

HELM_MODULE="helm.sh/helm/v3"
HELM_VERSION="v3.22.0"
KUBE_SCORE_MODULE="github.com/zegl/kube-score"
KUBE_SCORE_VERSION="v1.20.0"
PROMETHEUS_MODULE="github.com/prometheus/prometheus"
# Prometheus 3.X.Y is the Go module version v0.3XX.Y (the module predates Go's v2+ rules).
PROMTOOL_VERSION="3.16.0"
PROMETHEUS_MODULE_VERSION="v0.316.0"

die() { echo "install: error: $*" >&2; exit 1; }
say() { echo "install: $*"; }

need_go() {
  command -v go >/dev/null 2>&1 \
    || die "'go' not found: the chart tools are built from source; install Go 1.26 or newer (the official release, or Debian's golang-go if it is new enough)"
}

# module_dir MODULE VERSION: downloads one exact module version, prints its source folder.
module_dir() {
  local module="$1" version="$2" json dir
  # outside any Go module (cd /) so that this is a plain download, not a go.mod edit
  if ! json="$(cd / && go mod download -json "$module@$version" 2>&1)"; then
    echo "$json" >&2
    die "the Go module proxy did not give $module@$version (see above)"
  fi
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || die "go mod download gave no source for $module@$version: $json"
  echo "$dir"
}

# build DIR PACKAGE OUTPUT LDFLAGS [TAGS]: builds into OUTPUT atomically (a failed build
# leaves nothing).
build() {
  local dir="$1" package="$2" out="$3" ldflags="$4" tags="${5:-}"
  mkdir -p "$BIN"
  # GOTOOLCHAIN=local: an old Go says so plainly instead of fetching another toolchain.
  # CGO_ENABLED=0: static binaries, no C compiler needed.
  # GOWORK=off: a module may ship its developers' go.work naming folders the download lacks.
  if ! (cd "$dir" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off \
        go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out.tmp" "$package"); then
    rm -f "$out.tmp"
    die "building $out failed (see above; the module's go.mod names the Go version it needs, this is $(go env GOVERSION))"
  fi
  mv "$out.tmp" "$out"
}

helm_installed() {
  [[ -x "$BIN/helm" && "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]
}

install_helm() {
  if helm_installed; then
    return 0
  fi
  need_go
  say "building helm $HELM_VERSION into $BIN/helm (first time: a few minutes)"
  local dir client_go major minor ldflags
  dir="$(module_dir "$HELM_MODULE" "$HELM_VERSION")"
  # Helm's Makefile stamps the Kubernetes version it was built against (client-go v0.X.Y is
  # Kubernetes 1.X); without it `helm template` pretends the cluster is Kubernetes 1.20.
  client_go="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$dir/go.mod" | head -n1)"
  [[ -n "$client_go" ]] || die "no k8s.io/client-go version in $dir/go.mod"
  major=1 minor="$client_go"
  ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  build "$dir" ./cmd/helm "$BIN/helm" "$ldflags"
  helm_installed || die "$BIN/helm does not report version $HELM_VERSION"
}

kube_score_installed() {
  [[ -x "$BIN/kube-score" ]] && "$BIN/kube-score" version 2>/dev/null | grep -q "version: $KUBE_SCORE_VERSION,"
}

install_kube_score() {
  if kube_score_installed; then
    return 0
  fi
  need_go
  say "building kube-score $KUBE_SCORE_VERSION into $BIN/kube-score"
  local dir
  dir="$(module_dir "$KUBE_SCORE_MODULE" "$KUBE_SCORE_VERSION")"
  build "$dir" ./cmd/kube-score "$BIN/kube-score" "-w -s -X main.version=$KUBE_SCORE_VERSION"
  kube_score_installed || die "$BIN/kube-score does not report version $KUBE_SCORE_VERSION"
}

promtool_installed() {
  [[ -x "$BIN/promtool" ]] && "$BIN/promtool" --version 2>/dev/null | grep -q "^promtool, version $PROMTOOL_VERSION "
}

install_promtool() {
  if promtool_installed; then
    return 0
  fi
  need_go
  say "building promtool $PROMTOOL_VERSION into $BIN/promtool (first time: a few minutes)"
  local dir
  dir="$(module_dir "$PROMETHEUS_MODULE" "$PROMETHEUS_MODULE_VERSION")"
  build "$dir" ./cmd/promtool "$BIN/promtool" \
    "-w -s -X github.com/prometheus/common/version.Version=$PROMTOOL_VERSION" remove_all_sd
  promtool_installed || die "$BIN/promtool does not report version $PROMTOOL_VERSION"
}

case "${1:-all}" in
  all)
    install_helm
    install_kube_score
    install_promtool
    say "installed: helm $HELM_VERSION, kube-score $KUBE_SCORE_VERSION, promtool $PROMTOOL_VERSION ($BIN)"
    ;;
  helm) install_helm ;;
  kube-score) install_kube_score ;;
  promtool) install_promtool ;;
  versions)
    echo "HELM_VERSION=$HELM_VERSION"
    echo "KUBE_SCORE_VERSION=$KUBE_SCORE_VERSION"
    echo "PROMTOOL_VERSION=$PROMTOOL_VERSION"
    ;;
  *) die "usage: $0 [all|helm|kube-score|promtool|versions]" ;;
esac
