#!/usr/bin/env bash
# Packs what the GPU machine needs to run Forge's GPU tests and benchmarks into .gpu/ (git-ignored).
# That machine's image has CUDA, PyTorch and CMake but none of our Debian libraries and no network,
# so the binaries are built here (generic x86-64-v3 CPU code, CUDA for sm_80 and sm_90) and travel
# with every shared library they load except glibc's and CUDA's own, which the image has (the C++
# runtime travels in case the image's is older); OpenMPI's plugins travel too (MPI starts as a
# singleton there).
# Usage: tests/gpu/bundle.sh [BUILD_DIR]   (default build-gpu), then on the GPU machine, with .gpu
# carried: bash tests/gpu/device_run.sh [tests|sanitize|bench|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-gpu}
BINS="forge forge_gpu_tests forge_infer_tests forge_parallel_tests forge_train_tests"

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFORGE_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3 >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD" -j"$(nproc)" --target $BINS
[ -f "$BUILD/kernels/libforge_cuda.a" ] || { echo "bundle: built without CUDA (no nvcc found)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for b in $BINS; do
  src="$BUILD/$b"
  [ -f "$src" ] || src="$BUILD/tests/$b"
  strip -o "$stage/bin/$b" "$src"
done
# The libraries: everything ldd resolves outside glibc and CUDA's folder.
ompi=$(dirname "$(ldd "$BUILD/forge" | awk '/libmpi.so/{print $3}')")/openmpi/lib/openmpi3
skip='/usr/local/cuda|/libc\.so|/libm\.so|/libdl\.so|/libpthread|/librt\.so|/libresolv|/ld-linux'
for f in "$stage"/bin/* "$ompi"/*.so; do ldd "$f" 2>/dev/null | awk '/=> \//{print $3}'; done |
  sort -u | grep -Ev "$skip" | xargs cp -L -t "$stage/lib"
cp -r "$ompi" "$stage/lib/openmpi3"
# The GPU peer (PyTorch + transformers + PEFT), when ../shared is beside the checkout.
[ -f ../shared/peers/torch_gpu_peft.py ] && cp ../shared/peers/torch_gpu_peft.py "$stage/"
# The op table's PyTorch references, as CI makes them.
/usr/bin/python3 tests/reference/ops_reference.py "$stage/ops_reference.h5" >/dev/null
/usr/bin/python3 tests/reference/optim_reference.py "$stage/optim_reference.h5" >/dev/null

mkdir -p .gpu
tar -C "$stage" -cf - . | xz -T"$(nproc)" -6 >.gpu/bundle.tar.xz
git rev-parse HEAD >.gpu/commit 2>/dev/null || true
echo "bundle: .gpu/bundle.tar.xz $(du -h .gpu/bundle.tar.xz | cut -f1) ($(ls "$stage/lib" | wc -l) libraries)"
