// Communicator, mesh and gradient-sync checks. CTest runs this suite under `mpirun -np 4` (and
// once as a single process, where the world has one rank); every rank runs every test.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "kernels/cuda/cuda_backend.h"
#include "core/device_stats.h"
#include "parallel/comm.h"
#include "parallel/comm_device.h"
#include "parallel/comm_nccl.h"
#include "parallel/grad_sync.h"
#include "parallel/mesh.h"

using namespace forge;
using namespace forge::parallel;

namespace {
Communicator& W() { return world(); }

// Values that differ per rank and per element, never zero.
Tensor rank_values(int64_t n, int rank) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(rank + 1) * 0.5f + float(i) * 0.25f;
  return Tensor::from_vector(v, {n});
}
}  // namespace

TEST(Comm, AllReduceSumsMaxesAndMins) {
  const int n = W().size(), r = W().rank();
  Tensor t = rank_values(7, r);
  W().all_reduce(t);
  for (int64_t i = 0; i < 7; ++i) {
    double want = 0;
    for (int q = 0; q < n; ++q) want += (q + 1) * 0.5 + i * 0.25;
    EXPECT_NEAR(t.to_float_vector()[size_t(i)], want, 1e-5);
  }
  Tensor m = Tensor::from_vector(std::vector<int64_t>{r, -r}, {2});
  W().all_reduce(m, ReduceOp::Max);
  EXPECT_EQ(m.to_vector<int64_t>(), (std::vector<int64_t>{n - 1, 0}));
  EXPECT_EQ(W().reduce({double(r)}, ReduceOp::Min)[0], 0.0);
}

TEST(Comm, ReduceScatterAndAllGatherWithUnevenParts) {
  const int n = W().size(), r = W().rank();
  std::vector<int64_t> counts;
  for (int q = 0; q < n; ++q) counts.push_back(q + 2);  // 2, 3, 4, ... elements
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  const int64_t mine_at = std::accumulate(counts.begin(), counts.begin() + r, int64_t(0));
  Tensor in = rank_values(total, r), out = Tensor::empty({counts[size_t(r)]});
  W().reduce_scatter(in, out, counts);
  for (int64_t i = 0; i < counts[size_t(r)]; ++i) {
    double want = 0;
    for (int q = 0; q < n; ++q) want += (q + 1) * 0.5 + (mine_at + i) * 0.25;
    EXPECT_NEAR(out.to_float_vector()[size_t(i)], want, 1e-5);
  }
  Tensor all = Tensor::empty({total});
  W().all_gather(rank_values(counts[size_t(r)], r), all, counts);
  int64_t at = 0;
  for (int q = 0; q < n; ++q)
    for (int64_t i = 0; i < counts[size_t(q)]; ++i, ++at)
      EXPECT_FLOAT_EQ(all.to_float_vector()[size_t(at)], (q + 1) * 0.5f + i * 0.25f);
}

TEST(Comm, BroadcastAndSendRecvRing) {
  const int n = W().size(), r = W().rank();
  Tensor b = rank_values(5, r);
  W().broadcast(b, n - 1);
  EXPECT_EQ(b.to_float_vector(), rank_values(5, n - 1).to_float_vector());
  if (n == 1) GTEST_SKIP() << "point-to-point needs two ranks (run under mpirun)";
  // Each rank sends to the next and receives from the previous, non-blocking both ways.
  Tensor got = Tensor::empty({4});
  auto rx = W().recv_async(got, (r + n - 1) % n, 7);
  auto tx = W().send_async(rank_values(4, r), (r + 1) % n, 7);
  rx->wait();
  tx->wait();
  EXPECT_EQ(got.to_float_vector(), rank_values(4, (r + n - 1) % n).to_float_vector());
}

TEST(Mesh, LayoutPutsTensorParallelFastest) {
  if (W().size() != 4) GTEST_SKIP() << "the layout test needs 4 ranks";
  Mesh m(W(), {2, 2, 1});
  const int r = W().rank();
  EXPECT_EQ(m.tp_rank(), r % 2);
  EXPECT_EQ(m.dp_rank(), r / 2);
  EXPECT_EQ(m.rank_of(m.dp_rank(), m.tp_rank(), m.pp_rank()), r);
  EXPECT_EQ(m.tp().world_ranks(), (std::vector<int>{r / 2 * 2, r / 2 * 2 + 1}));
  EXPECT_EQ(m.dp().world_ranks(), (std::vector<int>{r % 2, r % 2 + 2}));
  EXPECT_EQ(m.pp().size(), 1);
  Mesh p(W(), {1, 2, 2});
  EXPECT_EQ(p.pp_rank(), r / 2);
  EXPECT_EQ(p.pp().world_ranks(), (std::vector<int>{r % 2, r % 2 + 2}));
}

TEST(Mesh, WrongSizeIsAClearError) {
  try {
    Mesh m(W(), {W().size() + 1, 1, 1});
    FAIL() << "a mesh larger than the world was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("but " + std::to_string(W().size())), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mpirun -np " + std::to_string(W().size() + 1)), std::string::npos);
  }
}

TEST(GradSync, BucketsSumGradientsOrGiveEachRankItsSlice) {
  const int n = W().size(), r = W().rank();
  for (auto mode : {GradSync::Mode::AllReduce, GradSync::Mode::ReduceScatter}) {
    // Three parameters of odd sizes and 40-byte buckets: several buckets, slices cut through them.
    std::vector<Tensor> ps = {Tensor::zeros({3, 5}).requires_grad_(), Tensor::zeros({7}).requires_grad_(),
                              Tensor::zeros({2, 4}).requires_grad_()};
    GradSync sync(W(), ps, mode, 40);
    EXPECT_GE(sync.buckets(), 3);
    // Two micro-batches, the first without reduction: gradients accumulate locally first.
    for (int mb = 0; mb < 2; ++mb) {
      sync.set_sync(mb == 1);
      Tensor loss = add(add(sum(mul(ps[0], float(r + 1))), sum(mul(ps[1], float(2 * r + 1)))), sum(mul(ps[2], 3.0)));
      loss.backward();
    }
    sync.finish();
    // d loss / d p summed over micro-batches and ranks.
    double s0 = 0, s1 = 0;
    for (int q = 0; q < n; ++q) s0 += 2.0 * (q + 1), s1 += 2.0 * (2 * q + 1);
    const double s2 = 2.0 * 3 * n;
    std::vector<float> flat;
    for (int i = 0; i < 15; ++i) flat.push_back(float(s0));
    for (int i = 0; i < 7; ++i) flat.push_back(float(s1));
    for (int i = 0; i < 8; ++i) flat.push_back(float(s2));
    if (mode == GradSync::Mode::AllReduce) {
      for (int i = 0; i < 3; ++i) {
        auto g = ps[size_t(i)].grad().to_float_vector();
        for (float x : g) EXPECT_FLOAT_EQ(x, i == 0 ? float(s0) : i == 1 ? float(s1) : float(s2));
      }
    } else {
      const FlatLayout& l = sync.layout();
      auto g = sync.shard_grad().to_float_vector();
      ASSERT_EQ(int64_t(g.size()), l.hi - l.lo);
      for (int64_t i = l.lo; i < l.hi; ++i) EXPECT_FLOAT_EQ(g[size_t(i - l.lo)], flat[size_t(i)]) << "flat " << i;
      for (auto& p : ps) EXPECT_FALSE(p.grad().defined()) << "ZeRO-2 keeps only the slice";
    }
  }
}

// The NCCL backend on a GPU: collectives over device tensors, one NCCL rank per MPI rank (the
// unique id travels over MPI). Skips where there is no GPU or no NCCL in the build.
TEST(Nccl, CollectivesOnDeviceTensors) {
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL";
  if (!cuda::available() || cuda::device_count() < 1) GTEST_SKIP() << "no GPU: " << cuda::status();
  const int n = W().size(), r = W().rank();
  auto nc = nccl_communicator(W(), r % cuda::device_count(), "nccl");
  ASSERT_EQ(nc->size(), n);
  const Device dev = Device::cuda(r % cuda::device_count());
  Tensor t = rank_values(9, r).to(dev);
  nc->all_reduce(t);
  Tensor want = rank_values(9, 0);
  for (int q = 1; q < n; ++q) want = add(want, rank_values(9, q));
  EXPECT_EQ(t.to(Device::cpu()).to_float_vector(), want.to_float_vector());
  std::vector<int64_t> counts;
  for (int q = 0; q < n; ++q) counts.push_back(q + 2);
  int64_t total = 0, at = 0;
  for (int q = 0; q < n; ++q) total += counts[size_t(q)], at += q < r ? counts[size_t(q)] : 0;
  Tensor out = Tensor::empty({counts[size_t(r)]}, DType::F32, dev);
  nc->reduce_scatter(rank_values(total, r).to(dev), out, counts);
  Tensor full = rank_values(total, 0);
  for (int q = 1; q < n; ++q) full = add(full, rank_values(total, q));
  EXPECT_EQ(out.to(Device::cpu()).to_float_vector(), full.narrow(0, at, counts[size_t(r)]).contiguous().to_float_vector());
  Tensor all = Tensor::empty({total}, DType::F32, dev);
  nc->all_gather(out, all, counts);
  EXPECT_EQ(all.to(Device::cpu()).to_float_vector(), full.to_float_vector());
  EXPECT_EQ(nc->sum({1.5, double(r)})[0], 1.5 * n);
}

// A device group (parallel/comm_device.h): device tensors over the device half (NCCL on a GPU,
// MPI over the device memory on the simulated one, CTest's *_sim run), host tensors and doubles
// over MPI, both through one communicator; a collective mixing devices is refused.
TEST(DeviceGroup, RoutesDeviceAndHostTensors) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device (CTest's parallel_comm_4_ranks_sim simulates them): " << cuda::status();
  if (!cuda::simulated() && !nccl_built()) GTEST_SKIP() << "built without NCCL";
  const int n = W().size(), r = W().rank();
  const Device dev = Device::cuda(r % cuda::device_count());
  auto g = device_group(W().split(0, r, "group"), dev.index);
  ASSERT_EQ(g->size(), n);
  Tensor want = rank_values(9, 0);
  for (int q = 1; q < n; ++q) want = add(want, rank_values(9, q));
  Tensor d = rank_values(9, r).to(dev), h = rank_values(9, r);
  const DeviceStats before = device_stats();
  g->all_reduce(d);
  g->all_reduce(h);
  EXPECT_EQ((device_stats() - before).h2d + (device_stats() - before).d2h, 0) << "a collective copied through the host";
  EXPECT_EQ(d.to(Device::cpu()).to_float_vector(), want.to_float_vector());
  EXPECT_EQ(h.to_float_vector(), want.to_float_vector());
  std::vector<int64_t> counts;
  int64_t total = 0, at = 0;
  for (int q = 0; q < n; ++q) counts.push_back(q + 2), total += q + 2, at += q < r ? q + 2 : 0;
  Tensor out = Tensor::empty({counts[size_t(r)]}, DType::F32, dev);
  g->reduce_scatter(rank_values(total, r).to(dev), out, counts);
  Tensor full = rank_values(total, 0);
  for (int q = 1; q < n; ++q) full = add(full, rank_values(total, q));
  EXPECT_EQ(out.to(Device::cpu()).to_float_vector(), full.narrow(0, at, counts[size_t(r)]).contiguous().to_float_vector());
  Tensor all = Tensor::empty({total}, DType::F32, dev);
  g->all_gather(out, all, counts);
  EXPECT_EQ(all.to(Device::cpu()).to_float_vector(), full.to_float_vector());
  if (n > 1) {  // a ring of device sends
    Tensor got = Tensor::empty({5}, DType::F32, dev);
    auto s = g->send_async(rank_values(5, r).to(dev), (r + 1) % n, 3);
    g->recv(got, (r + n - 1) % n, 3);
    s->wait();
    EXPECT_EQ(got.to(Device::cpu()).to_float_vector(), rank_values(5, (r + n - 1) % n).to_float_vector());
  }
  EXPECT_EQ(g->sum({1.5, double(r)})[0], 1.5 * n);
  Tensor host_out = Tensor::empty({counts[size_t(r)]});
  try {
    g->reduce_scatter(rank_values(total, r).to(dev), host_out, counts);
    FAIL() << "a collective from device to host memory ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input is on cuda"), std::string::npos) << e.what();
  }
}
