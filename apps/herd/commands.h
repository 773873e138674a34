// Subcommands of the herd binary: each registers its options on the CLI11 app and a callback that
// runs it and stores the process exit code. Argument parsing and wiring only; the work lives in the
// libraries.
#pragma once

#include <CLI/CLI.hpp>

namespace herd::app {

void AddTokenizeCommand(CLI::App& app, int* exit_code);
void AddDetokenizeCommand(CLI::App& app, int* exit_code);
void AddInitCommand(CLI::App& app, int* exit_code);
void AddLogitsCommand(CLI::App& app, int* exit_code);
void AddConvertCommand(CLI::App& app, int* exit_code);
void AddQuantizeCommand(CLI::App& app, int* exit_code);
void AddRunCommands(CLI::App& app, int* exit_code);  // run, chat
void AddPerplexityCommand(CLI::App& app, int* exit_code);
void AddBenchCommand(CLI::App& app, int* exit_code);
void AddServeCommand(CLI::App& app, int* exit_code);
void AddDataCommand(CLI::App& app, int* exit_code);  // data tokenize, data inspect
void AddTrainCommand(CLI::App& app, int* exit_code);
void AddTokenizerCommand(CLI::App& app, int* exit_code);  // tokenizer train

}  // namespace herd::app
