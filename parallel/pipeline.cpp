// Pipeline schedules (see pipeline.h).
#include "parallel/pipeline.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"

namespace forge::parallel {
namespace {
constexpr int kActivation = 11, kGradient = 12;
}

Schedule schedule_from_name(const std::string& name) {
  if (name == "1f1b") return Schedule::OneFOneB;
  if (name == "gpipe") return Schedule::GPipe;
  throw Error("parallel.schedule: '" + name + "' is not a pipeline schedule (1f1b, gpipe)");
}

void run_pipeline(Schedule schedule, int64_t n, Communicator& pp, const Stage& st, bool train) {
  const int s = pp.rank(), S = pp.size();
  const bool first = s == 0, last = s == S - 1;
  std::vector<Tensor> inputs(static_cast<size_t>(n)), outputs(static_cast<size_t>(n));
  // Messages in flight and the buffers they read: kept until the step ends.
  std::vector<std::unique_ptr<Work>> sends;
  std::vector<Tensor> sent;
  auto send = [&](const Tensor& t, int dst, int tag) {
    sent.push_back(t.contiguous());
    sends.push_back(pp.send_async(sent.back(), dst, tag));
  };
  auto forward = [&](int64_t i) {
    Tensor in;
    if (!first) {
      in = Tensor::empty(st.activation_shape(i), st.activation_dtype, st.activation_device);
      pp.recv(in, s - 1, kActivation);
      if (train) in.requires_grad_(true);
    }
    Tensor out = st.forward(i, in);
    if (!last) send(out.detach(), s + 1, kActivation);
    if (train) {
      inputs[size_t(i)] = in;
      outputs[size_t(i)] = out;
    }
  };
  auto backward = [&](int64_t i) {
    Tensor& out = outputs[size_t(i)];
    Tensor g;
    if (!last) {
      g = Tensor::empty(out.shape(), out.dtype(), out.device());
      pp.recv(g, s + 1, kGradient);
    }
    // After the receive: the hook may wait for a message the next stage sends only once its
    // sends (this gradient among them) are through.
    if (st.before_backward) st.before_backward(i);
    out.backward(g);
    if (!first) {
      Tensor gin = inputs[size_t(i)].grad();
      send(gin.defined() ? gin : Tensor::zeros(inputs[size_t(i)].shape(), st.activation_dtype, st.activation_device),
           s - 1, kGradient);
    }
    inputs[size_t(i)] = outputs[size_t(i)] = Tensor();  // this micro-batch's activations go
  };

  if (!train || schedule == Schedule::GPipe) {
    for (int64_t i = 0; i < n; ++i) forward(i);
    if (train)
      for (int64_t i = 0; i < n; ++i) backward(i);
  } else {
    const int64_t warmup = std::min<int64_t>(S - s - 1, n);
    for (int64_t i = 0; i < warmup; ++i) forward(i);
    for (int64_t i = warmup; i < n; ++i) {
      forward(i);
      backward(i - warmup);
    }
    for (int64_t i = n - warmup; i < n; ++i) backward(i);
  }
  for (auto& w : sends) w->wait();
}

}  // namespace forge::parallel
