// safetensors: round trip of every dtype, and hostile or truncated files give errors that name
// the file (never a crash or a read outside the file).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/process_memory.h"
#include "core/random.h"
#include "core/safetensors.h"

using namespace forge;
namespace fs = std::filesystem;

namespace {
std::string tmp_path(const std::string& name) { return (fs::temp_directory_path() / name).string(); }

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << data;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
    for (auto& n : f.names()) f.tensor(n).to_float_vector();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  Generator g(7);
  NamedTensors in = {{"a.f32", randn({3, 5}, DType::F32, &g)},
                     {"b.bf16", randn({4}, DType::BF16, &g)},
                     {"c.f16", randn({2, 2, 2}, DType::F16, &g)},
                     {"d.i64", Tensor::arange(6).view({2, 3})},
                     {"e.empty", Tensor::empty({0, 4})}};
  const std::string p = tmp_path("forge_st_roundtrip.safetensors");
  save_safetensors(p, in, {{"format", "pt"}});
  SafetensorsFile f(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.names().size(), in.size());
  for (auto& [name, t] : in) {
    Tensor r = f.tensor(name);
    EXPECT_EQ(r.dtype(), t.dtype()) << name;
    EXPECT_EQ(r.shape(), t.shape()) << name;
    EXPECT_EQ(r.to_float_vector(), t.to_float_vector()) << name;
  }
  // Header padded so the data section starts 8-byte aligned.
  uint64_t n;
  std::memcpy(&n, read_text_file(p).data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, HostileHeadersAreErrorsNamingTheFile) {
  const std::string p = tmp_path("forge_st_bad.safetensors");
  struct Case {
    std::string header, data, expect;
  };
  const std::string f4(16, '\0');
  std::vector<Case> cases = {
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", f4.substr(0, 8), "outside the data section"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", f4, "12 bytes of data for shape [2, 2]"},
      {"{\"x\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", f4, "unsupported dtype 'F64'"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", f4, "non-negative integers"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", f4, "outside the data section"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", f4, "needs dtype, shape and data_offsets"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", f4, "too large"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
       "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", f4, "overlap"},
      {"{\"x\": not json", f4, "not valid JSON"},
      {"[1,2,3]", f4, "must be a JSON object"},
      {"{\"__metadata__\":{\"a\":1}}", "", "must be a string"},
  };
  for (auto& c : cases) {
    write_raw(p, c.header, c.data);
    std::string e = error_of(p);
    EXPECT_NE(e.find(c.expect), std::string::npos) << "header " << c.header << " gave: " << e;
    EXPECT_NE(e.find(p), std::string::npos) << e;
  }
  // Length fields that point past the end of the file.
  std::ofstream(p, std::ios::binary) << "abc";
  EXPECT_NE(error_of(p).find("need at least 8"), std::string::npos);
  {
    std::ofstream f(p, std::ios::binary);
    uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{}";
  }
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos);
  {
    std::ofstream f(p, std::ios::binary);
    uint64_t n = ~0ull;
    f.write(reinterpret_cast<const char*>(&n), 8);
  }
  EXPECT_NE(error_of(p).find("100 MiB"), std::string::npos);
}

TEST(Safetensors, EveryTruncationAndByteFlipIsAnErrorOrAValidFile) {
  Generator g(3);
  const std::string good = tmp_path("forge_st_good.safetensors"), p = tmp_path("forge_st_fuzz.safetensors");
  save_safetensors(good, {{"w", randn({4, 3}, DType::F32, &g)}, {"b", randn({3}, DType::BF16, &g)}});
  const std::string bytes = read_text_file(good);
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(len));
    EXPECT_FALSE(error_of(p).empty()) << "truncated to " << len << " bytes was accepted";
  }
  Generator r(11);
  std::vector<int64_t> pos = randint(0, int64_t(bytes.size()), {400}).to_vector<int64_t>();
  std::vector<int64_t> val = randint(0, 256, {400}).to_vector<int64_t>();
  for (size_t i = 0; i < pos.size(); ++i) {
    std::string b = bytes;
    b[pos[i]] = char(val[i]);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << b;
    error_of(p);  // must not crash; an error or a valid file are both fine
  }
}

TEST(Safetensors, ShardedDirectoryMapsEachTensorToItsFile) {
  const std::string dir = tmp_path("forge_st_sharded");
  fs::remove_all(dir);
  fs::create_directories(dir);
  Generator g(5);
  NamedTensors t;
  for (int i = 0; i < 5; ++i) t.emplace_back("layer." + std::to_string(i), randn({64, 64}, DType::F32, &g));
  save_weights(dir, t, 40000);  // 16 KiB each: two per shard
  EXPECT_TRUE(fs::exists(dir + "/model-00003-of-00003.safetensors"));
  WeightFiles w(dir);
  EXPECT_EQ(w.names().size(), 5u);
  EXPECT_NE(w.file_of("layer.4").find("model-00003-of-00003"), std::string::npos);
  for (auto& [n, x] : t) EXPECT_EQ(w.tensor(n).to_float_vector(), x.to_float_vector());
  // An index that names a tensor its shard lacks.
  std::string idx = read_text_file(dir + "/model.safetensors.index.json");
  idx.replace(idx.find("\"layer.0\""), 9, "\"layer.9\"");
  write_file_atomic(dir + "/model.safetensors.index.json", idx);
  EXPECT_THROW(WeightFiles{dir}, Error);
  fs::remove_all(dir);
}

// A tensor over the mapped file is one view per name while it lives; once let go, the pages it
// read leave the process's resident memory although the file stays mapped for the others.
TEST(Safetensors, ALetGoTensorGivesItsPagesBack) {
  const int64_t n = 16 << 20;  // 64 MiB of f32
  Tensor big = Tensor::empty({n});
  big.fill_(1.5);
  const std::string p = tmp_path("forge_st_pages.safetensors");
  save_safetensors(p, {{"big", big}, {"small", Tensor::ones({4})}});
  big = Tensor();
  SafetensorsFile f(p);
  Tensor small = f.tensor("small");  // keeps the mapping alive throughout
  const size_t before = rss_bytes();
  {
    Tensor t = f.tensor("big");
    EXPECT_EQ(f.tensor("big").raw_data(), t.raw_data());  // the same memory while t lives
    double s = 0;
    const float* x = t.data<float>();
    for (int64_t i = 0; i < n; i += 1024) s += x[i];  // touch every page
    EXPECT_EQ(s, 1.5 * double(n / 1024));
    EXPECT_GT(rss_bytes(), before + (48u << 20)) << "reading the tensor should make its pages resident";
  }
  EXPECT_LT(rss_bytes(), before + (8u << 20)) << "the let-go tensor's pages should have left";
  EXPECT_EQ(small.to_float_vector(), std::vector<float>(4, 1.0f));
  Tensor again = f.tensor("big");  // a fresh view reads the file again
  EXPECT_EQ(again.data<float>()[n - 1], 1.5f);
  fs::remove(p);
}
