// herd convert IN OUT --format hf|meta|gguf [--dtype DTYPE] [--shards N] [--threads T]
//   DTYPE: f32|bf16|f16 (any format), q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k (GGUF only)
// Loads a model in any format herd reads and writes it in another. The tokenizer travels with it
// when the input has one.
#include <cstdio>
#include <string>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/save.h"

namespace herd::app {
namespace {

struct ConvertOptions {
  std::string in, out, format, dtype = "bf16";
  int shards = 1, threads = 0;
};

int RunConvert(const ConvertOptions& o) {
  SaveOptions save;
  auto format = ParseFormatFlag(o.format);
  if (!format) return 1;
  save.format = *format;
  auto dtype = DTypeFromName(o.dtype);
  if (!dtype) return Fail("--dtype: unknown dtype \"" + o.dtype + "\"");
  save.dtype = *dtype;
  save.meta_shards = o.shards;
  Timer timer;
  auto loaded = LoadForSaving(o.in);
  if (!loaded) return 1;
  ThreadPool pool(o.threads);
  save.pool = &pool;
  Status st = SaveModel(loaded->model.config, loaded->model.weights, loaded->tokenizer_or_null(),
                        save, o.out);
  if (!st.ok()) return Fail(st.message());
  std::fprintf(stderr, "herd: wrote %s (%s, %s) in %.1f s\n", o.out.c_str(),
               FormatName(save.format), o.dtype.c_str(), timer.Seconds());
  return 0;
}

}  // namespace

void AddConvertCommand(CLI::App& app, int* exit_code) {
  static ConvertOptions o;
  auto* cmd = app.add_subcommand("convert", "Convert a model between HF, Meta and GGUF");
  cmd->add_option("in", o.in, "Input model (HF directory, Meta directory or .gguf)")->required();
  cmd->add_option("out", o.out, "Output directory (hf, meta) or .gguf file")->required();
  cmd->add_option("--format", o.format, "hf, meta or gguf")->required();
  cmd->add_option(
         "--dtype", o.dtype,
         "f32, bf16, f16 (any format); q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k (gguf)")
      ->capture_default_str();
  cmd->add_option("--shards", o.shards, "Meta format: model-parallel shards")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads converting rows (0 = all cores)");
  cmd->callback([exit_code] { *exit_code = RunConvert(o); });
}

}  // namespace herd::app
