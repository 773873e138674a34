// herd: Meta's Llama 3 family in C++. One binary, one subcommand per job.
#include <cstdio>

#include "apps/herd/commands.h"
#include "base/cpu.h"

int main(int argc, char** argv) {
  CLI::App app{
      "herd: Meta's Llama 3 family (tokenizer, models, generation, serving, training) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "herd 0.1.0");
  int exit_code = 0;
  herd::app::AddTokenizeCommand(app, &exit_code);
  herd::app::AddDetokenizeCommand(app, &exit_code);
  herd::app::AddInitCommand(app, &exit_code);
  herd::app::AddLogitsCommand(app, &exit_code);
  herd::app::AddConvertCommand(app, &exit_code);
  herd::app::AddQuantizeCommand(app, &exit_code);
  herd::app::AddRunCommands(app, &exit_code);
  herd::app::AddPerplexityCommand(app, &exit_code);
  herd::app::AddBenchCommand(app, &exit_code);
  herd::app::AddServeCommand(app, &exit_code);
  herd::app::AddDataCommand(app, &exit_code);
  herd::app::AddTrainCommand(app, &exit_code);
  herd::app::AddTokenizerCommand(app, &exit_code);
  app.add_subcommand("info", "Print the CPU features and the SIMD level herd dispatches to")
      ->callback([] { std::printf("herd 0.1.0\ncpu %s\n", herd::DescribeCpu().c_str()); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
