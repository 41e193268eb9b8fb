/* Subcommands of the ulm CLI. Each returns the process exit code; only tools print and exit. */
#ifndef ULM_CLI_H
#define ULM_CLI_H
typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} cli_command;

int cmd_version(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_task(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* `ulm run TASK.ulm INPUT [--json] [--stream]`: run dispatches here for files with task.spec. */
int task_cli_run(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
#endif
