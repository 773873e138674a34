// Dumps llama.cpp's intermediate tensors (every node of the compute graph, through the scheduler's
// eval callback) while it runs a prompt and a few greedy decode steps: the reference that herd's
// ggml-compatible numerics (--numerics ggml) are checked against op by op. Built by
// tools/llamacpp_dump/build.sh against the pinned llama.cpp with the AVX2 code path of the
// SmolLM2 goldens (tools/gen_llamacpp_goldens.py); not part of herd.
//
//   llamacpp_dump MODEL OUTDIR TOKENS [DECODE_STEPS]
//
// TOKENS: comma-separated ids, decoded in one batch (logits for every position, as the goldens'
// logits_all), then DECODE_STEPS (default 0) greedy steps one token per llama_decode. The context
// settings are the goldens': n_ctx 2048, n_batch = n_ubatch = 512, 2 threads, f16 KV cache, no
// flash attention. OUTDIR gets one file per float tensor, "<call>_<node>_<name>.f32" (row-major
// float32, ggml's ne[0] fastest), and index.tsv: call, node, name, op, type, ne0..ne3.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "llama.h"

namespace {

struct Dump {
  std::string dir;
  int call = 0, node = 0;
  FILE* index = nullptr;
};

bool OnEval(ggml_tensor* t, bool ask, void* user) {
  if (ask) return true;  // every node
  auto* d = static_cast<Dump*>(user);
  const int node = d->node++;
  std::fprintf(d->index, "%d\t%d\t%s\t%s\t%s\t%lld\t%lld\t%lld\t%lld\n", d->call, node, t->name,
               ggml_op_desc(t), ggml_type_name(t->type), static_cast<long long>(t->ne[0]),
               static_cast<long long>(t->ne[1]), static_cast<long long>(t->ne[2]),
               static_cast<long long>(t->ne[3]));
  if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) return true;
  if (!ggml_backend_buffer_is_host(t->buffer)) return true;
  std::vector<float> v;
  v.reserve(ggml_nelements(t));
  for (int64_t i3 = 0; i3 < t->ne[3]; ++i3)
    for (int64_t i2 = 0; i2 < t->ne[2]; ++i2)
      for (int64_t i1 = 0; i1 < t->ne[1]; ++i1)
        for (int64_t i0 = 0; i0 < t->ne[0]; ++i0) {
          const char* p = static_cast<const char*>(t->data) + i0 * t->nb[0] + i1 * t->nb[1] +
                          i2 * t->nb[2] + i3 * t->nb[3];
          v.push_back(t->type == GGML_TYPE_F32
                          ? *reinterpret_cast<const float*>(p)
                          : ggml_fp16_to_fp32(*reinterpret_cast<const ggml_fp16_t*>(p)));
        }
  std::string name = t->name;
  for (char& c : name)
    if (c == '/' || c == ' ' || c == '(' || c == ')') c = '_';
  const std::string path =
      d->dir + "/" + std::to_string(d->call) + "_" + std::to_string(node) + "_" + name + ".f32";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(v.data(), 4, v.size(), f) != v.size()) {
    std::fprintf(stderr, "llamacpp_dump: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
  return true;
}

int Argmax(const float* row, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: llamacpp_dump MODEL OUTDIR TOKENS [DECODE_STEPS]\n");
    return 2;
  }
  std::vector<llama_token> tokens;
  for (const char* p = argv[3]; *p;) {
    char* end;
    errno = 0;
    const long id = std::strtol(p, &end, 10);
    if (end == p || errno) {
      std::fprintf(stderr, "llamacpp_dump: bad token list %s\n", argv[3]);
      return 2;
    }
    tokens.push_back(static_cast<llama_token>(id));
    p = *end == ',' ? end + 1 : end;
  }
  const int steps = argc > 4 ? std::atoi(argv[4]) : 0;
  Dump dump{argv[2]};
  dump.index = std::fopen((dump.dir + "/index.tsv").c_str(), "w");
  if (!dump.index) {
    std::fprintf(stderr, "llamacpp_dump: cannot write into %s\n", argv[2]);
    return 1;
  }
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 2048;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = 2;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = cp.type_v = GGML_TYPE_F16;
  cp.cb_eval = OnEval;
  cp.cb_eval_user_data = &dump;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  if (llama_decode(ctx, batch) != 0) return 1;
  int next = Argmax(llama_get_logits_ith(ctx, batch.n_tokens - 1), n_vocab);
  std::printf("%d", next);
  for (int s = 0; s < steps; ++s) {
    ++dump.call;
    dump.node = 0;
    llama_batch one = llama_batch_get_one(&next, 1);
    if (llama_decode(ctx, one) != 0) return 1;
    next = Argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    std::printf(",%d", next);
  }
  std::printf("\n");
  std::fclose(dump.index);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
