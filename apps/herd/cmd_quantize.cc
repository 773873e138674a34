// herd quantize IN OUT --type
// q8_0|q4_0|q4_1|q5_0|q5_1|q4_k_s|q4_k_m|q5_k_s|q5_k_m|q6_k|bf16|f16|f32
//                      [--threads T]
// Writes any model herd loads (HF directory, Meta directory, GGUF) as one GGUF v3 file with
// llama.cpp's per-tensor dtype mix for that file type (src/model/quant_policy.h) and its
// general.file_type. Rows are converted in parallel; a progress line goes to stderr.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/quant_policy.h"
#include "model/save.h"

namespace herd::app {
namespace {
namespace fs = std::filesystem;

struct QuantizeOptions {
  std::string in, out, type;
  int threads = 0;
};

std::string Mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

std::string Duration(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600)
    return fmt::format("{}m{:02d}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return fmt::format("{}h{:02d}m", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
}

// Fails early (before minutes of quantising) when OUT cannot be written: its directory must
// exist or be creatable, and take a new file (the GGUF writer writes OUT.tmp, then renames).
Status CheckWritable(const std::string& out) {
  std::error_code ec;
  if (fs::is_directory(out, ec)) return Status::Errorf("{}: is a directory", out);
  const fs::path dir = fs::path(out).has_parent_path() ? fs::path(out).parent_path() : ".";
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Status::Errorf("{}: cannot create directory: {}", dir.string(), ec.message());
  } else if (!fs::is_directory(dir, ec)) {
    return Status::Errorf("{}: cannot write {}: not a directory", dir.string(), out);
  }
  const std::string probe = out + ".tmp";
  FILE* f = std::fopen(probe.c_str(), "wb");
  if (!f) return Status::Errorf("{}: cannot write: {}", probe, std::strerror(errno));
  std::fclose(f);
  std::remove(probe.c_str());
  return Status::Ok();
}

// Progress on stderr: one line redrawn in place on a terminal, one line per tensor otherwise.
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(fileno(stderr))) {}

  void Update(const SaveProgress& p) {
    const double elapsed = timer_.Seconds();
    const double frac =
        p.elements_total ? static_cast<double>(p.elements_done) / p.elements_total : 1.0;
    const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth + 0.5);
    const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    const std::string line = fmt::format(
        "[{}] {:>{}}/{} {:<28} {:<5} {} / {}  {}", bar, p.tensors_done,
        std::to_string(p.n_tensors).size(), p.n_tensors, p.name, Name(p.dtype), Mib(p.bytes_done),
        Mib(p.bytes_total),
        p.tensors_done == p.n_tensors ? "in " + Duration(elapsed) : "ETA " + Duration(eta));
    if (tty_) {
      std::fprintf(stderr, "\r%-*s", static_cast<int>(last_width_), line.c_str());
      last_width_ = line.size();
      if (p.tensors_done == p.n_tensors) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  size_t last_width_ = 0;
  Timer timer_;
};

int RunQuantize(const QuantizeOptions& o) {
  const auto type = QuantTypeFromName(o.type);
  if (!type) {
    std::string names;
    for (const auto& n : QuantTypeNames()) names += (names.empty() ? "" : ", ") + n;
    return Fail(fmt::format("--type: unknown type \"{}\" (known: {})", o.type, names));
  }
  if (o.threads < 0) return Fail("--threads must be >= 0 (0 = all cores)");
  if (Status st = CheckWritable(o.out); !st.ok()) return Fail(st.message());
  Timer timer;
  auto loaded = LoadForSaving(o.in);
  if (!loaded) return 1;
  const Model* model = &loaded->model;

  const LlamaConfig& config = model->config;
  const bool tied = model->weights.tied;
  std::map<std::string, int> in_types;
  ForEachTensor(model->weights, [&](TensorId, const Weight& w) {
    if (w.shape.size() == 2) ++in_types[std::string(Name(w.dtype))];
  });
  std::string in_desc;
  for (const auto& [name, n] : in_types)
    in_desc += fmt::format("{}{} {}", in_desc.empty() ? "" : ", ", n, name);
  for (const auto& [name, n] : in_types) {
    const DType d = *DTypeFromName(name);
    if (Info(d).block_size > 1 && d != DefaultDType(*type))
      std::fprintf(stderr,
                   "herd: warning: the input has %s matrices; requantising them adds a second "
                   "rounding error (quantise from f32/f16/bf16 weights when you can)\n",
                   name.c_str());
  }

  ThreadPool pool(o.threads);
  SaveOptions save;
  save.format = ModelFormat::kGguf;
  save.dtype = DefaultDType(*type);
  save.gguf_file_type = LlamaFileType(*type);
  save.chat_template = model->chat_template;
  save.pool = &pool;
  std::map<std::string, int> out_types;
  save.tensor_dtype = [&](TensorId id, const std::vector<int64_t>& shape) {
    const DType d = TensorDType(*type, config, tied, id, shape);
    ++out_types[std::string(Name(d))];
    return d;
  };
  ProgressBar bar;
  uint64_t out_weight_bytes = 0;
  save.progress = [&](const SaveProgress& p) {
    bar.Update(p);
    out_weight_bytes = p.bytes_done;
  };
  std::fprintf(stderr, "herd: quantize %s (%s; %s matrices) to %s with %d threads\n", o.in.c_str(),
               FormatName(model->files.format), in_desc.c_str(),
               std::string(QuantTypeName(*type)).c_str(), pool.size());

  Status st = SaveModel(config, model->weights, loaded->tokenizer_or_null(), save, o.out);
  if (!st.ok()) return Fail(st.message());
  std::string mix;
  for (const auto& [name, n] : out_types)
    mix += fmt::format("{}{} {}", mix.empty() ? "" : ", ", n, name);
  std::error_code ec;
  const uint64_t file_bytes = fs::file_size(o.out, ec);
  uint64_t params = 0;
  ForEachTensor(model->weights, [&](TensorId, const Weight& w) { params += w.numel(); });
  std::fprintf(stderr,
               "herd: wrote %s (%s, general.file_type %u; matrices: %s): weights %s -> %s, %.2f "
               "bits per weight, file %s, in %.1f s\n",
               o.out.c_str(), std::string(QuantTypeName(*type)).c_str(), LlamaFileType(*type),
               mix.c_str(), Mib(model->weights.TotalBytes()).c_str(), Mib(out_weight_bytes).c_str(),
               params ? 8.0 * out_weight_bytes / params : 0.0, Mib(file_bytes).c_str(),
               timer.Seconds());
  return 0;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, int* exit_code) {
  static QuantizeOptions o;
  auto* cmd = app.add_subcommand(
      "quantize", "Write a model as GGUF with llama.cpp's per-tensor quantisation mix");
  cmd->add_option("in", o.in, "Input model (HF directory, Meta directory or .gguf)")->required();
  cmd->add_option("out", o.out, "Output .gguf file")->required();
  std::string types;
  for (const auto& n : QuantTypeNames()) types += (types.empty() ? "" : ", ") + n;
  cmd->add_option("--type", o.type, "File type: " + types)->required();
  cmd->add_option("--threads,-t", o.threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->callback([exit_code] { *exit_code = RunQuantize(o); });
}

}  // namespace herd::app
