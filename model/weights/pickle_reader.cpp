#include "model/weights/pickle_reader.h"

#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>

#include "common/error.h"

namespace clipcap {

namespace {

// The callables a state_dict pickle may name. Everything else is refused at the GLOBAL opcode,
// before anything could call it.
enum class Global { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType };

struct StorageGlobal {
  const char* name;
  c10::ScalarType dtype;
};
const StorageGlobal kStorageTypes[] = {
    {"FloatStorage", c10::ScalarType::Float},   {"DoubleStorage", c10::ScalarType::Double},
    {"HalfStorage", c10::ScalarType::Half},     {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"LongStorage", c10::ScalarType::Long},     {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short},   {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},     {"BoolStorage", c10::ScalarType::Bool},
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor } kind;
  int64_t i = 0;  // Bool, Int
  double f = 0;
  std::string s;  // String; Storage: key
  std::vector<ValuePtr> items;                         // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  Global global = Global::OrderedDict;
  c10::ScalarType dtype = c10::ScalarType::Float;  // StorageType global, Storage
  PickledTensor tensor;                             // Tensor; Storage: storage_numel

  explicit Value(Kind k) : kind(k) {}
};

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::Tuple: return "tuple";
    case Value::Kind::List: return "list";
    case Value::Kind::Dict: return "dict";
    case Value::Kind::Global: return "global";
    case Value::Kind::Storage: return "storage";
    case Value::Kind::Tensor: return "tensor";
  }
  return "?";
}

// Names of the opcodes we refuse, so the message says what the pickle tried to do.
const char* opcode_name(unsigned char op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 'P': return "PERSID";
    case 'S': case 'T': case 'U': return "STRING";
    case 'V': return "UNICODE";
    case 'B': case 'C': case 0x8e: return "BINBYTES";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 0x8b: return "LONG4";
    case 'F': return "FLOAT";
    case 'd': return "DICT";
    case 'l': return "LIST";
    case 'p': return "PUT";
    case 'g': return "GET";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x8d: return "BINUNICODE8";
    default: return nullptr;
  }
}

class Unpickler {
 public:
  Unpickler(const std::string& data, const std::string& path) : data_(data), path_(path) {}

  ValuePtr run() {
    while (true) {
      const size_t at = pos_;
      const unsigned char op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          const unsigned char v = byte();
          if (v > 5) corrupt("unknown pickle protocol " + std::to_string(v), at);
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint only
        case '(': marks_.push_back(stack_.size()); break;
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty()) corrupt("STOP with a malformed stack", at);
          return stack_.back();
        }
        case 'N': push(Value::Kind::None); break;
        case 0x88: push_bool(true); break;   // NEWTRUE
        case 0x89: push_bool(false); break;  // NEWFALSE
        case 'K': push_int(byte()); break;   // BININT1
        case 'M': push_int(uint_le(2)); break;  // BININT2
        case 'J': push_int(static_cast<int32_t>(static_cast<uint32_t>(uint_le(4)))); break;  // BININT
        case 0x8a: {  // LONG1: little-endian two's complement of n bytes
          const size_t n = byte();
          if (n > 8) corrupt("integer wider than 64 bits", at);
          uint64_t v = n ? uint_le(n) : 0;
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian IEEE double
          const char* p = take(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<unsigned char>(p[k]);
          auto v = std::make_shared<Value>(Value::Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': push_string(uint_le(4)); break;  // BINUNICODE
        case 0x8c: push_string(byte()); break;    // SHORT_BINUNICODE
        case ')': push(Value::Kind::Tuple); break;
        case 't': {  // TUPLE
          auto v = std::make_shared<Value>(Value::Kind::Tuple);
          v->items = pop_to_mark(at);
          stack_.push_back(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84;
          if (stack_.size() < stack_floor() + n) corrupt("stack underflow", at);
          auto v = std::make_shared<Value>(Value::Kind::Tuple);
          v->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          stack_.push_back(v);
          break;
        }
        case ']': push(Value::Kind::List); break;
        case 'a': {  // APPEND
          ValuePtr item = pop(at);
          expect(top(at), Value::Kind::List, "APPEND", at)->items.push_back(item);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark(at);
          auto& list = expect(top(at), Value::Kind::List, "APPENDS", at)->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case '}': push(Value::Kind::Dict); break;
        case 's': {  // SETITEM
          ValuePtr value = pop(at), key = pop(at);
          set_item(*expect(top(at), Value::Kind::Dict, "SETITEM", at), key, value);
          break;
        }
        case 'u': {  // SETITEMS
          auto kv = pop_to_mark(at);
          if (kv.size() % 2) corrupt("SETITEMS with an odd number of items", at);
          Value& dict = *expect(top(at), Value::Kind::Dict, "SETITEMS", at);
          for (size_t k = 0; k < kv.size(); k += 2) set_item(dict, kv[k], kv[k + 1]);
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line(at), name = line(at);
          stack_.push_back(make_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(at), module = pop(at);
          if (module->kind != Value::Kind::String || name->kind != Value::Kind::String)
            corrupt("STACK_GLOBAL needs two strings", at);
          stack_.push_back(make_global(module->s, name->s));
          break;
        }
        case 'R': {  // REDUCE
          ValuePtr args = pop(at), callable = pop(at);
          stack_.push_back(reduce(*callable, *expect(args, Value::Kind::Tuple, "REDUCE", at), at));
          break;
        }
        case 'b': {  // BUILD: state_dict() sets the OrderedDict's _metadata attribute; not needed.
          ValuePtr state = pop(at);
          if (top(at)->kind != Value::Kind::Dict)
            refuse(std::string("BUILD on a ") + kind_name(top(at)->kind));
          (void)state;
          break;
        }
        case 'q': memo_[byte()] = top(at); break;                               // BINPUT
        case 'r': memo_[static_cast<uint32_t>(uint_le(4))] = top(at); break;    // LONG_BINPUT
        case 0x94: memo_[static_cast<uint32_t>(memo_.size())] = top(at); break;  // MEMOIZE
        case 'h': stack_.push_back(get(byte(), at)); break;                     // BINGET
        case 'j': stack_.push_back(get(static_cast<uint32_t>(uint_le(4)), at)); break;  // LONG_BINGET
        case 'Q': stack_.push_back(persistent_load(*pop(at), at)); break;        // BINPERSID
        default: {
          const char* name = opcode_name(op);
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          refuse(std::string("opcode ") + hex + (name ? std::string(" (") + name + ")" : std::string()) +
                 " at byte " + std::to_string(at));
        }
      }
    }
  }

 private:
  [[noreturn]] void corrupt(const std::string& what, size_t at) const {
    throw Error(path_ + ": data.pkl: corrupt pickle (" + what + " at byte " + std::to_string(at) + ")");
  }
  [[noreturn]] void refuse(const std::string& what) const {
    throw Error(path_ + ": refusing to load: pickle uses " + what + ", which a plain state_dict never does");
  }

  const char* take(size_t n) {
    if (n > data_.size() - pos_) corrupt("unexpected end of data", pos_);
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  unsigned char byte() { return static_cast<unsigned char>(*take(1)); }
  uint64_t uint_le(size_t n) {
    const char* p = take(n);
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[k]);
    return v;
  }
  std::string line(size_t at) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos || end - pos_ > 256) corrupt("unterminated GLOBAL name", at);
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  ValuePtr& top(size_t at) {
    if (stack_.size() <= stack_floor()) corrupt("stack underflow", at);
    return stack_.back();
  }
  ValuePtr pop(size_t at) {
    ValuePtr v = top(at);
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_to_mark(size_t at) {
    if (marks_.empty()) corrupt("no MARK", at);
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void push(Value::Kind k) { stack_.push_back(std::make_shared<Value>(k)); }
  void push_bool(bool b) {
    auto v = std::make_shared<Value>(Value::Kind::Bool);
    v->i = b;
    stack_.push_back(v);
  }
  void push_int(int64_t i) {
    auto v = std::make_shared<Value>(Value::Kind::Int);
    v->i = i;
    stack_.push_back(v);
  }
  void push_string(uint64_t n) {
    auto v = std::make_shared<Value>(Value::Kind::String);
    v->s.assign(take(n), n);
    stack_.push_back(v);
  }
  ValuePtr expect(const ValuePtr& v, Value::Kind k, const char* op, size_t at) {
    if (v->kind != k)
      corrupt(std::string(op) + " on a " + kind_name(v->kind) + " (expected a " + kind_name(k) + ")", at);
    return v;
  }
  ValuePtr get(uint32_t key, size_t at) {
    auto it = memo_.find(key);
    if (it == memo_.end()) corrupt("memo key " + std::to_string(key) + " was never stored", at);
    return it->second;
  }
  static void set_item(Value& dict, const ValuePtr& key, const ValuePtr& value) {
    if (key->kind == Value::Kind::String)
      for (auto& kv : dict.entries)
        if (kv.first->kind == Value::Kind::String && kv.first->s == key->s) {
          kv.second = value;
          return;
        }
    dict.entries.emplace_back(key, value);
  }

  ValuePtr make_global(const std::string& module, const std::string& name) {
    auto v = std::make_shared<Value>(Value::Kind::Global);
    if (module == "collections" && name == "OrderedDict") {
      v->global = Global::OrderedDict;
    } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      v->global = Global::RebuildTensorV2;
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      v->global = Global::RebuildParameter;
    } else {
      const StorageGlobal* storage = nullptr;
      if (module == "torch")
        for (const auto& s : kStorageTypes)
          if (name == s.name) storage = &s;
      if (!storage) refuse("global " + module + "." + name);
      v->global = Global::StorageType;
      v->dtype = storage->dtype;
    }
    return v;
  }

  // persistent_load(('storage', torch.XStorage, key, location, numel)): a reference to the zip
  // entry data/<key>; read later, on demand.
  ValuePtr persistent_load(const Value& pid, size_t at) {
    const auto& t = pid.items;
    if (pid.kind != Value::Kind::Tuple || t.size() != 5 || t[0]->kind != Value::Kind::String ||
        t[0]->s != "storage" || t[1]->kind != Value::Kind::Global || t[1]->global != Global::StorageType ||
        t[2]->kind != Value::Kind::String || t[3]->kind != Value::Kind::String || t[4]->kind != Value::Kind::Int ||
        t[4]->i < 0)
      corrupt("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)", at);
    auto v = std::make_shared<Value>(Value::Kind::Storage);
    v->dtype = t[1]->dtype;
    v->s = t[2]->s;
    v->tensor.storage_numel = t[4]->i;
    return v;
  }

  std::vector<int64_t> int_tuple(const Value& v, const char* what, size_t at) const {
    if (v.kind != Value::Kind::Tuple) corrupt(std::string("tensor ") + what + " is not a tuple", at);
    std::vector<int64_t> out;
    for (const auto& x : v.items) {
      if (x->kind != Value::Kind::Int || x->i < 0)
        corrupt(std::string("tensor ") + what + " is not a tuple of non-negative ints", at);
      out.push_back(x->i);
    }
    return out;
  }

  ValuePtr reduce(const Value& callable, const Value& args, size_t at) {
    if (callable.kind != Value::Kind::Global) corrupt(std::string("REDUCE calls a ") + kind_name(callable.kind), at);
    const auto& a = args.items;
    switch (callable.global) {
      case Global::OrderedDict:
        if (!a.empty()) corrupt("OrderedDict() with arguments", at);
        return std::make_shared<Value>(Value::Kind::Dict);
      case Global::RebuildTensorV2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.size() < 6 || a.size() > 7 || a[0]->kind != Value::Kind::Storage || a[1]->kind != Value::Kind::Int ||
            a[1]->i < 0)
          corrupt("unexpected _rebuild_tensor_v2 arguments", at);
        auto v = std::make_shared<Value>(Value::Kind::Tensor);
        PickledTensor& t = v->tensor;
        t.dtype = a[0]->dtype;
        t.storage_key = a[0]->s;
        t.storage_numel = a[0]->tensor.storage_numel;
        t.storage_offset = a[1]->i;
        t.size = int_tuple(*a[2], "size", at);
        t.stride = int_tuple(*a[3], "stride", at);
        if (t.size.size() != t.stride.size()) corrupt("tensor size and stride differ in length", at);
        return v;
      }
      case Global::RebuildParameter:  // (data, requires_grad, backward_hooks): the tensor itself
        if (a.size() != 3 || a[0]->kind != Value::Kind::Tensor) corrupt("unexpected _rebuild_parameter arguments", at);
        return a[0];
      case Global::StorageType:
        refuse("a call of a torch storage type");
    }
    corrupt("unknown callable", at);
  }

  const std::string& data_;
  const std::string& path_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
};

bool holds_tensors(const Value& dict) {
  for (const auto& kv : dict.entries)
    if (kv.second->kind == Value::Kind::Tensor) return true;
  return false;
}

}  // namespace

std::vector<PickledTensor> read_state_dict_pickle(const std::string& pickle, const std::string& path) {
  ValuePtr root = Unpickler(pickle, path).run();
  if (root->kind != Value::Kind::Dict)
    throw Error(path + ": data.pkl holds a " + kind_name(root->kind) + ", not a state_dict");
  const Value* dict = root.get();
  // Training checkpoints often wrap the weights: {"state_dict": ..., "epoch": ...}.
  if (!holds_tensors(*dict)) {
    for (const char* key : {"state_dict", "model"})
      for (const auto& kv : root->entries)
        if (dict == root.get() && kv.first->kind == Value::Kind::String && kv.first->s == key &&
            kv.second->kind == Value::Kind::Dict)
          dict = kv.second.get();
  }
  std::vector<PickledTensor> out;
  for (const auto& [key, value] : dict->entries) {
    if (key->kind != Value::Kind::String)
      throw Error(path + ": data.pkl: state_dict has a " + kind_name(key->kind) + " key, not a tensor name");
    if (value->kind != Value::Kind::Tensor)
      throw Error(path + ": data.pkl: '" + key->s + "' is a " + kind_name(value->kind) + ", not a tensor");
    out.push_back(value->tensor);
    out.back().name = key->s;
  }
  return out;
}

}  // namespace clipcap
