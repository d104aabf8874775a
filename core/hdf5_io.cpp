// HDF5 reading and atomic writing of named tensors through the HDF5 C API.
#include "core/hdf5_io.h"

#include "core/file_util.h"

#include <hdf5.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace forge {
namespace {
// HDF5 closes what is left open at exit; a file whose write failed (a full disk) stays half closed
// and crashes that clean-up (SIGSEGV after the error was reported). Every file here is closed
// where it is used, so the exit handler has nothing to do: it is not installed.
const bool kNoAtexit = (H5dont_atexit(), true);

struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Handle() {
    if (id >= 0) close(id);
  }
};

// ---- the seal: HDF5 skips a file's first kSealBytes (its "user block"); save_hdf5 writes there the
// file's size and a checksum of everything after, and check_hdf5_seal compares them before libhdf5
// reads a byte. libhdf5 is not safe on altered files (a fuzzer found a use-after-free in
// H5Aiterate2 within seconds), so a torn or flipped checkpoint must never reach it.
constexpr size_t kSealBytes = 512;
constexpr const char* kSealMagic = "forge-hdf5-seal 1\n";

// A 64-bit multiply-rotate mix over 8-byte words: several GB/s, enough to notice corruption; not
// a defence against tampering. Fed in chunks whose sizes are multiples of 8 but the last.
struct Checksum {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  uint64_t total = 0;
  void mix(uint64_t w) {
    h ^= w;
    h *= 0xFF51AFD7ED558CCDull;
    h = (h << 31) | (h >> 33);
  }
  void add(const char* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    if (n > i) std::memcpy(&tail, p + i, n - i), mix(tail);
    total += n;
  }
  std::string hex() {
    mix(total);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

// The checksum of f's bytes after the seal, and their count.
std::string checksum_after_seal(std::FILE* f, uint64_t& size) {
  Checksum c;
  std::vector<char> buf(size_t(4) << 20);
  std::fseek(f, long(kSealBytes), SEEK_SET);
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), f)) > 0;) c.add(buf.data(), n);
  size = kSealBytes + c.total;
  return c.hex();
}

void write_seal(const std::string& tmp) {
  std::FILE* f = std::fopen(tmp.c_str(), "r+b");
  FORGE_CHECK(f, tmp, ": cannot reopen to seal");
  uint64_t size = 0;
  const std::string sum = checksum_after_seal(f, size);
  char seal[kSealBytes] = {};
  std::snprintf(seal, sizeof seal, "%ssize %llu\nchecksum %s\n", kSealMagic, static_cast<unsigned long long>(size),
                sum.c_str());
  std::fseek(f, 0, SEEK_SET);
  const bool ok = std::fwrite(seal, 1, sizeof seal, f) == sizeof seal;
  FORGE_CHECK(std::fclose(f) == 0 && ok, tmp, ": cannot write its seal");
}

herr_t collect(hid_t, const char* name, const H5O_info_t* info, void* out) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

// A variable-length string attribute of obj; false when absent or not a string.
bool read_string_attr(hid_t obj, const char* name, std::string& out) {
  if (H5Aexists(obj, name) <= 0) return false;
  H5Handle a{H5Aopen(obj, name, H5P_DEFAULT), H5Aclose};
  H5Handle t{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(t.id) != H5T_STRING) return false;
  H5Handle mt{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mt.id, H5T_VARIABLE);
  char* s = nullptr;
  if (H5Aread(a.id, mt.id, &s) < 0 || !s) return false;
  out = s;
  H5free_memory(s);
  return true;
}

DType dtype_of_h5(hid_t type, hid_t dset, const std::string& path, const std::string& name) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) return DType::F32;  // f32 read as is, f64 converted on read
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    std::string stored;
    if (size == 2 && !is_signed && read_string_attr(dset, "dtype", stored)) return dtype_from_name(stored);
    if (size == 1 && !is_signed) return DType::U8;
    if (size <= 4) return DType::I32;
    return DType::I64;
  }
  throw Error(path + ": dataset '" + name + "' has an unsupported HDF5 type (expected float or integer)");
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value, const std::string& where) {
  H5Handle st{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(st.id, H5T_VARIABLE);
  H5Handle as{H5Screate(H5S_SCALAR), H5Sclose};
  H5Handle a{H5Acreate2(obj, name.c_str(), st.id, as.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  const char* v = value.c_str();
  FORGE_CHECK(a.id >= 0 && H5Awrite(a.id, st.id, &v) >= 0, where, ": cannot write attribute '", name, "'");
}

herr_t collect_string_attr(hid_t obj, const char* name, const H5A_info_t*, void* out) {
  std::string v;
  if (read_string_attr(obj, name, v)) (*static_cast<Hdf5Attrs*>(out))[name] = v;
  return 0;
}

hid_t mem_type(DType dt) {
  switch (dt) {
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::I32: return H5T_NATIVE_INT32;
    case DType::I64: return H5T_NATIVE_INT64;
    case DType::U8: return H5T_NATIVE_UINT8;
    case DType::BF16: case DType::F16: return H5T_NATIVE_UINT16;
  }
  return H5T_NATIVE_FLOAT;
}
}  // namespace

void check_hdf5_seal(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  FORGE_CHECK(f, path, ": cannot open (", std::strerror(errno), ")");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  char seal[kSealBytes + 1] = {};
  const size_t got = std::fread(seal, 1, kSealBytes, f);
  FORGE_CHECK(got == kSealBytes && std::strncmp(seal, kSealMagic, std::strlen(kSealMagic)) == 0, path,
              ": has no Forge seal (truncated, or not written by this version of Forge)");
  unsigned long long want_size = 0;
  char want_sum[17] = {};
  FORGE_CHECK(std::sscanf(seal + std::strlen(kSealMagic), "size %llu\nchecksum %16s", &want_size, want_sum) == 2, path,
              ": unreadable seal");
  uint64_t size = 0;
  const std::string sum = checksum_after_seal(f, size);
  FORGE_CHECK(size == want_size, path, ": truncated or extended (", size, " bytes, sealed at ", want_size, ")");
  FORGE_CHECK(sum == want_sum, path, ": corrupt (its bytes no longer match the checksum written with them)");
}

std::map<std::string, Tensor> load_hdf5(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  H5Handle f{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  FORGE_CHECK(f.id >= 0, path, ": cannot open as HDF5 (missing, unreadable or corrupt)");
  std::vector<std::string> names;
  FORGE_CHECK(H5Ovisit2(f.id, H5_INDEX_NAME, H5_ITER_NATIVE, collect, &names, H5O_INFO_BASIC) >= 0, path,
              ": cannot list datasets (corrupt file?)");
  std::map<std::string, Tensor> out;
  for (const std::string& name : names) {
    H5Handle d{H5Dopen2(f.id, name.c_str(), H5P_DEFAULT), H5Dclose};
    FORGE_CHECK(d.id >= 0, path, ": cannot open dataset '", name, "'");
    H5Handle sp{H5Dget_space(d.id), H5Sclose};
    int nd = H5Sget_simple_extent_ndims(sp.id);
    FORGE_CHECK(nd >= 0, path, ": dataset '", name, "' has a bad dataspace");
    std::vector<hsize_t> dims(static_cast<size_t>(nd));
    H5Sget_simple_extent_dims(sp.id, dims.data(), nullptr);
    Shape shape(dims.begin(), dims.end());
    H5Handle ty{H5Dget_type(d.id), H5Tclose};
    DType dt = dtype_of_h5(ty.id, d.id, path, name);
    Tensor t = Tensor::empty(shape, dt);
    if (t.numel() > 0)
      FORGE_CHECK(H5Dread(d.id, mem_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0, path,
                  ": cannot read dataset '", name, "' (truncated or corrupt file?)");
    out[name] = t;
  }
  return out;
}

Hdf5Attrs load_hdf5_attrs(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  H5Handle f{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  FORGE_CHECK(f.id >= 0, path, ": cannot open as HDF5 (missing, unreadable or corrupt)");
  Hdf5Attrs out;
  hsize_t idx = 0;
  H5Aiterate2(f.id, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_string_attr, &out);
  return out;
}

namespace {
// What the operating system said about the last failed write ("" when it said nothing): HDF5's
// own errors do not say that the disk is full.
std::string os_reason() {
  return errno ? std::string(" (") + std::strerror(errno) + ")" : std::string();
}

// The file written in one go; throws naming the dataset that failed.
void write_hdf5(const std::string& tmp, const std::map<std::string, Tensor>& tensors, const Hdf5Attrs& attrs) {
  {
    H5Handle fcpl{H5Pcreate(H5P_FILE_CREATE), H5Pclose};
    H5Pset_userblock(fcpl.id, kSealBytes);  // room for the seal, written once the file is closed
    H5Handle f{H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.id, H5P_DEFAULT), H5Fclose};
    FORGE_CHECK(f.id >= 0, tmp, ": cannot create HDF5 file");
    H5Handle lcpl{H5Pcreate(H5P_LINK_CREATE), H5Pclose};
    H5Pset_create_intermediate_group(lcpl.id, 1);
    for (auto& [name, t0] : tensors) {
      Tensor t = t0.to(Device::cpu()).contiguous();
      std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
      H5Handle sp{H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose};
      hid_t ft = mem_type(t.dtype());
      H5Handle d{H5Dcreate2(f.id, name.c_str(), ft, sp.id, lcpl.id, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
      FORGE_CHECK(d.id >= 0, tmp, ": cannot create dataset '", name, "'");
      if (t.numel() > 0)
        FORGE_CHECK(H5Dwrite(d.id, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0, tmp,
                    ": cannot write dataset '", name, "'");
      if (t.dtype() == DType::BF16 || t.dtype() == DType::F16)
        write_string_attr(d.id, "dtype", dtype_name(t.dtype()), tmp);
    }
    for (auto& [k, v] : attrs) write_string_attr(f.id, k, v, tmp);
    FORGE_CHECK(H5Fflush(f.id, H5F_SCOPE_GLOBAL) >= 0, tmp, ": flush failed");
    FORGE_CHECK(H5Fclose(f.id) >= 0, tmp, ": close failed");
    f.id = -1;
  }
  write_seal(tmp);
}
}  // namespace

void save_hdf5(const std::string& path, const std::map<std::string, Tensor>& tensors, const Hdf5Attrs& attrs) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::string tmp = path + ".tmp";
  errno = 0;
  try {
    write_hdf5(tmp, tensors, attrs);
  } catch (const Error& e) {  // a full disk or a quota: no torn file is left, the reason is named
    const std::string reason = os_reason();
    std::remove(tmp.c_str());
    throw Error(std::string(e.what()) + reason);
  }
  commit_file(tmp, path);
}

}  // namespace forge
