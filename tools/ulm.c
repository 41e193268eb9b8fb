/* ulm — the command-line tool. Each subcommand lives in tools/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_command commands[] = {
    {"run", cmd_run, "generate text from a model"},
    {"convert", cmd_convert, "convert a llama2.c / GGUF / Hugging Face model to .ulm"},
    {"inspect", cmd_inspect, "list metadata and tensors of a .ulm"},
    {"verify", cmd_verify, "check the SHA-256 of a .ulm"},
    {"logits", cmd_logits, "dump f32 logits at every prompt position"},
    {"task", cmd_task, "pack / check / run a task (spec + model + golden set)"},
    {"eval", cmd_eval, "evaluate a task on its golden set"},
    {"tokenize", cmd_tokenize, "print the token ids of a text (like llama-tokenize)"},
    {"version", cmd_version, "print the version and the kernel ISA picked"},
    {"train", cmd_train, "train a task model on JSONL input/output pairs, write a .ulm"},
    {"mkmodel", cmd_mkmodel, "write a random-weight model of a real shape (--preset)"},
    {"bench", cmd_bench, "prefill / decode tok/s, time to first token, peak RSS (--duration: sustained)"},
};

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: ulm COMMAND [ARGS]\n");
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].help);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ulm: unknown command '%s' (ulm --help lists them)\n", argv[1]);
    return 2;
}
