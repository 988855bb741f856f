#!/usr/bin/env bash
# Places MNIST and Fashion-MNIST under data/<dataset>/ as gzip-compressed IDX files.
#
# Sources, first that holds a file wins:
#   1. $QUANT_DATA_DIR/<dataset>/            (a folder you point at)
#   2. $QUANT_SHARED_DATA (default ../shared/data)/<dataset>/
#   3. /usr/share/datasets/fashion-mnist/   (Debian's fashion-mnist package; Fashion-MNIST only)
#   4. the canonical download mirrors        (skipped when QUANT_NO_DOWNLOAD=1)
# The destination is data/ (or $QUANT_DATA_DEST, which the tests use).
# Every file is verified against data/SHA256SUMS.idx (SHA-256 of the decompressed IDX content);
# a mismatch is refused and the file is not installed. Files already in place and valid are kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="${QUANT_DATA_DEST:-$root/data}"
sums="$root/data/SHA256SUMS.idx"
shared="${QUANT_SHARED_DATA:-$root/../shared/data}"
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

die() { echo "make data: $*" >&2; exit 1; }
[ -f "$sums" ] || die "$sums missing: restore it with git checkout data/SHA256SUMS.idx"

mirror() {
  case "$1" in
    mnist) echo "https://storage.googleapis.com/cvdf-datasets/mnist" ;;
    fashion-mnist) echo "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com" ;;
  esac
}

# content_sha <file>: SHA-256 of the decompressed content of a .gz or raw file.
content_sha() {
  case "$1" in
    *.gz) gzip -dc "$1" | sha256sum | cut -d' ' -f1 ;;
    *) sha256sum "$1" | cut -d' ' -f1 ;;
  esac
}

expected_sha() { awk -v n="$1" '$2 == n { print $1 }' "$sums"; }

# install <candidate> <dataset> <file>: verify and copy into data/ (compressing raw files); 0 on success.
install_candidate() {
  local src=$1 ds=$2 f=$3 want got
  want=$(expected_sha "$ds/$f")
  got=$(content_sha "$src") || return 1
  if [ "$got" != "$want" ]; then
    echo "make data: refusing $src: sha256 of its content is $got, expected $want" >&2
    return 1
  fi
  mkdir -p "$dest/$ds"
  local tmp="$dest/$ds/.$f.gz.tmp"
  case "$src" in
    *.gz) cp "$src" "$tmp" ;;
    *) gzip -c "$src" > "$tmp" ;;
  esac
  chmod 644 "$tmp"
  mv "$tmp" "$dest/$ds/$f.gz"
  echo "data/$ds/$f.gz <- $src"
}

for ds in mnist fashion-mnist; do
  for f in $files; do
    target="$dest/$ds/$f.gz"
    if [ -f "$target" ] && [ "$(content_sha "$target")" = "$(expected_sha "$ds/$f")" ]; then
      continue
    fi
    done_=0
    for dir in ${QUANT_DATA_DIR:+"$QUANT_DATA_DIR/$ds"} "$shared/$ds" \
               $( [ "$ds" = fashion-mnist ] && echo /usr/share/datasets/fashion-mnist ); do
      for cand in "$dir/$f.gz" "$dir/$f"; do
        if [ -f "$cand" ] && install_candidate "$cand" "$ds" "$f"; then done_=1; break 2; fi
      done
    done
    if [ $done_ = 0 ] && [ "${QUANT_NO_DOWNLOAD:-0}" != 1 ]; then
      url="$(mirror "$ds")/$f.gz"
      tmpdl=$(mktemp)
      if curl -fsSL --connect-timeout 10 --max-time 300 -o "$tmpdl" "$url" 2>/dev/null \
         && install_candidate "$tmpdl" "$ds" "$f"; then
        done_=1
      fi
      rm -f "$tmpdl"
    fi
    [ $done_ = 1 ] || die "no valid source for $ds/$f: set QUANT_DATA_DIR to a folder with $ds/$f.gz, or connect to the internet (tried ${QUANT_DATA_DIR:+$QUANT_DATA_DIR, }$shared, $(mirror "$ds"))"
  done
done
echo "make data: MNIST and Fashion-MNIST verified under data/"
