#include "model/weights/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace clipcap {

namespace {

struct DtypeInfo {
  const char* name;
  size_t size;
  std::optional<torch::ScalarType> torch_type;  // nullopt: known to the format, not loadable here
};

const DtypeInfo kDtypes[] = {
    {"F64", 8, torch::kFloat64}, {"F32", 4, torch::kFloat32}, {"F16", 2, torch::kFloat16},
    {"BF16", 2, torch::kBFloat16}, {"I64", 8, torch::kInt64}, {"I32", 4, torch::kInt32},
    {"I16", 2, torch::kInt16},    {"I8", 1, torch::kInt8},     {"U8", 1, torch::kUInt8},
    {"BOOL", 1, torch::kBool},    {"U16", 2, std::nullopt},    {"U32", 4, std::nullopt},
    {"U64", 8, std::nullopt},     {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* dtype_name(torch::ScalarType t) {  // nullptr: not storable
  for (const auto& d : kDtypes)
    if (d.torch_type && *d.torch_type == t) return d.name;
  return nullptr;
}

bool is_float(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat16 || t == torch::kBFloat16 || t == torch::kFloat64;
}

void pread_all(int fd, void* buf, size_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": read failed (" + std::strerror(errno) + ")");
    }
    if (got == 0) throw Error(path + ": file is truncated");
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path_ + ": cannot open (" + std::strerror(errno) + ")");
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error(path_ + ": cannot stat (" + std::strerror(errno) + ")");
    if (S_ISDIR(st.st_mode)) throw Error(path_ + ": is a directory, not a safetensors file");
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (file_size < 8) throw Error(path_ + ": not a safetensors file (only " + std::to_string(file_size) + " bytes)");
    unsigned char len_bytes[8];
    pread_all(fd_, len_bytes, 8, 0, path_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    // The reference implementation caps headers at 100 MB; a larger value means garbage.
    if (header_len == 0 || header_len > 100'000'000 || header_len > file_size - 8)
      throw Error(path_ + ": corrupt safetensors header length " + std::to_string(header_len) +
                  " (file has " + std::to_string(file_size) + " bytes)");
    std::string header(header_len, '\0');
    pread_all(fd_, header.data(), header_len, 8, path_);
    data_start_ = 8 + header_len;
    const uint64_t data_size = file_size - data_start_;

    nlohmann::json j;
    try {
      j = nlohmann::json::parse(header);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path_ + ": safetensors header is not valid JSON");
    }
    if (!j.is_object()) throw Error(path_ + ": safetensors header is not a JSON object");

    std::vector<std::pair<uint64_t, std::string>> by_offset;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const auto& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) throw Error(path_ + ": __metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) throw Error(path_ + ": __metadata__ value '" + m.key() + "' is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string where = path_ + ": tensor '" + name + "'";
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw Error(where + ": header entry needs dtype, shape and data_offsets");
      if (!v["dtype"].is_string()) throw Error(where + ": dtype is not a string");
      Entry e;
      e.dtype = v["dtype"].get<std::string>();
      const DtypeInfo* dt = find_dtype(e.dtype);
      if (!dt) throw Error(where + ": unknown dtype " + e.dtype);
      if (!v["shape"].is_array()) throw Error(where + ": shape is not a list");
      uint64_t numel = 1;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) throw Error(where + ": shape has a non-integer or negative size");
        uint64_t n = d.get<uint64_t>();
        if (n != 0 && numel > (uint64_t(1) << 62) / n) throw Error(where + ": shape is absurdly large");
        numel *= n;
        e.shape.push_back(static_cast<int64_t>(n));
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw Error(where + ": data_offsets must be two non-negative integers");
      e.begin = off[0].get<uint64_t>();
      e.end = off[1].get<uint64_t>();
      if (e.end < e.begin) throw Error(where + ": data_offsets end before they begin");
      if (e.end > data_size)
        throw Error(where + ": data_offsets run past the end of the file (truncated file?)");
      if (e.end - e.begin != numel * dt->size)
        throw Error(where + ": " + std::to_string(e.end - e.begin) + " bytes stored but " + e.dtype + " " +
                    shape_string(e.shape) + " needs " + std::to_string(numel * dt->size));
      by_offset.emplace_back(e.begin, name);
      entries_.emplace(name, std::move(e));
    }
    // Contiguity: the data section must be exactly the tensors, back to back, with no holes.
    std::sort(by_offset.begin(), by_offset.end());
    uint64_t expect = 0;
    for (const auto& [begin, name] : by_offset) {
      const Entry& e = entries_.at(name);
      if (e.begin != expect)
        throw Error(path_ + ": tensor '" + name + "': data_offsets are not contiguous (starts at " +
                    std::to_string(e.begin) + ", expected " + std::to_string(expect) + ")");
      expect = e.end;
    }
    if (expect != data_size)
      throw Error(path_ + ": file has " + std::to_string(data_size - expect) +
                  " bytes after the last tensor (corrupt header or wrong file)");
    for (const auto& [begin, name] : by_offset) order_.push_back(name);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> SafetensorsFile::names() const { return order_; }

bool SafetensorsFile::contains(const std::string& name) const { return entries_.count(name) > 0; }

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
  return it->second;
}

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const { return entry(name).shape; }

torch::Tensor SafetensorsFile::load(const std::string& name, std::optional<torch::ScalarType> dtype) const {
  const Entry& e = entry(name);
  const DtypeInfo* dt = find_dtype(e.dtype);
  if (!dt->torch_type)
    throw Error(path_ + ": tensor '" + name + "': unsupported dtype " + e.dtype + " (expected F32, F16 or BF16)");
  torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(*dt->torch_type));
  if (e.end > e.begin) pread_all(fd_, t.data_ptr(), e.end - e.begin, data_start_ + e.begin, path_);
  if (dtype && *dtype != t.scalar_type()) {
    if (!is_float(t.scalar_type()) || !is_float(*dtype))
      throw Error(path_ + ": tensor '" + name + "': unsupported dtype " + e.dtype + " where " +
                  c10::toString(*dtype) + " weights are expected");
    t = t.to(*dtype);
  }
  return t;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  sorted.reserve(tensors.size());
  for (const auto& [name, t] : tensors) sorted.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].first == sorted[i - 1].first) throw Error(path + ": duplicate tensor name '" + sorted[i].first + "'");

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    const char* dtype = dtype_name(t.scalar_type());
    if (!dtype)
      throw Error(path + ": tensor '" + name + "': cannot store dtype " + c10::toString(t.scalar_type()) +
                  " in safetensors");
    header[name] = {{"dtype", dtype},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // aligned data section, like the Rust writer
  AtomicFile out(path);
  unsigned char len[8];
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, 8);
  out.write(h.data(), h.size());
  for (const auto& [name, t] : sorted) out.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  out.commit();
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::optional<torch::ScalarType> dtype) {
  SafetensorsFile f(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : f.names()) {
    const auto& e = f.entry(name);
    bool floating = e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16" || e.dtype == "F64";
    out.emplace(name, f.load(name, floating ? dtype : std::nullopt));
  }
  return out;
}

}  // namespace clipcap
