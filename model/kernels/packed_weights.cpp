#include "model/kernels/packed_weights.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "model/kernels/onednn.h"

namespace clipcap {

namespace {

// (storage, offset, dtype, sizes and strides): a view of the same memory as another shape is
// another weight.
using WeightKey = std::tuple<const void*, int64_t, int64_t, std::vector<int64_t>>;

struct Packed {
  explicit Packed(const torch::Tensor& weight) : storage(weight.storage().getWeakStorageImpl()) {}
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;
  int64_t version = 0;
  dnnl::memory::desc desc;
  torch::Tensor bytes;  // undefined until the second use
};

struct Cache {
  std::mutex mutex;
  std::map<WeightKey, Packed> weights;
  std::map<const void*, c10::weak_intrusive_ptr<c10::StorageImpl>> frozen;  // by storage
};

bool is_frozen(Cache& c, const torch::Tensor& w) {
  auto it = c.frozen.find(w.storage().unsafeGetStorageImpl());
  return it != c.frozen.end() && !it->second.expired();
}

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: kernels may run while other statics go away
  return *c;
}

WeightKey key_of(const torch::Tensor& w) {
  std::vector<int64_t> shape(w.sizes().begin(), w.sizes().end());
  shape.insert(shape.end(), w.strides().begin(), w.strides().end());
  return {w.storage().unsafeGetStorageImpl(), w.storage_offset(), static_cast<int64_t>(w.scalar_type()), std::move(shape)};
}

// Inference tensors track no version; they cannot be changed in place outside inference mode.
int64_t version_of(const torch::Tensor& w) { return w.is_inference() ? -1 : static_cast<int64_t>(w._version()); }

template <class Map, class Expired>
void drop_freed(Map& map, Expired expired) {
  for (auto it = map.begin(); it != map.end();) it = expired(it->second) ? map.erase(it) : std::next(it);
}

torch::Tensor pack(const torch::Tensor& weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& packed) {
  torch::Tensor bytes = at::empty({static_cast<int64_t>(packed.get_size())}, weight.options().dtype(at::kByte));
  dnnl::memory from(plain, onednn_engine(), weight.data_ptr()), to(packed, onednn_engine(), bytes.data_ptr());
  at::internal::lazy_init_num_threads();
  dnnl::stream stream(onednn_engine());
  dnnl::reorder(from, to).execute(stream, from, to);  // zeroes the padding of the blocks
  stream.wait();
  return bytes;
}

}  // namespace

bool weight_packing_enabled() {
  static const bool plain = [] {
    const char* v = std::getenv("CLIPCAP_PLAIN_WEIGHTS");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return !plain;
}

PackedWeight packed_weight(const torch::Tensor& weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& packed) {
  if (!weight_packing_enabled() || packed == plain || !weight.has_storage()) return {};
  Cache& c = cache();
  const WeightKey key = key_of(weight);
  const int64_t version = version_of(weight);
  std::lock_guard<std::mutex> lock(c.mutex);
  if (!is_frozen(c, weight)) return {};
  auto it = c.weights.find(key);
  // The address may be a freed weight's, now another's; or the weight changed in place.
  if (it != c.weights.end() && (it->second.storage.expired() || it->second.version != version)) {
    c.weights.erase(it);
    it = c.weights.end();
  }
  if (it == c.weights.end()) {  // its first use: remembered, not packed
    drop_freed(c.weights, [](const Packed& p) { return p.storage.expired(); });
    Packed first(weight);
    first.version = version;
    first.desc = packed;
    c.weights.emplace(key, std::move(first));
    return {true, {}};
  }
  Packed& p = it->second;
  // Another product shape wants another layout (CPUs whose kernels block by the row count): that
  // one runs on the stored weights rather than repack back and forth.
  if (!(p.desc == packed)) return {true, {}};
  if (!p.bytes.defined()) p.bytes = pack(weight, plain, packed);
  return {true, p.bytes};
}

void freeze_weight(const torch::Tensor& weight) {
  if (!weight.defined() || !weight.has_storage()) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  drop_freed(c.frozen, [](const c10::weak_intrusive_ptr<c10::StorageImpl>& s) { return s.expired(); });
  c.frozen.insert_or_assign(weight.storage().unsafeGetStorageImpl(), weight.storage().getWeakStorageImpl());
}

size_t packed_weight_count() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  size_t n = 0;
  for (const auto& entry : c.weights) n += entry.second.bytes.defined() && !entry.second.storage.expired();
  return n;
}

}  // namespace clipcap
