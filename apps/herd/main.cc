// herd: Meta's Llama 3 family in C++. One binary, one subcommand per job.
#include "apps/herd/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "herd: Meta's Llama 3 family (tokenizer, models, generation, serving, training) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "herd 0.1.0");
  int exit_code = 0;
  herd::app::AddTokenizeCommand(app, &exit_code);
  herd::app::AddDetokenizeCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
