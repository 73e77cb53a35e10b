/*
 * main.c — the command line: cairn [-c FILE] [-t] [-h] [-V].
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "server.h"

static void main_usage(FILE *f)
{
    fprintf(f, "usage: cairn [-c FILE] [-t] [-h] [-V]\n"
               "  -c FILE  read the configuration from FILE (Mosquitto syntax); without it\n"
               "           Cairn listens on 127.0.0.1:1883 and keeps its data in ./cairn-data\n"
               "  -t       check the configuration and exit (0: OK, 1: the error is printed)\n"
               "  -h       this help\n"
               "  -V       print the version and exit\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    int opt;

    while ((opt = getopt(argc, argv, "c:thV")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'h':
            main_usage(stdout);
            return 0;
        case 'V':
            printf("cairn %s (MQTT 3.1.1, %s loop)\n", CAIRN_VERSION, loop_backend_name());
            return 0;
        default:
            main_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cairn: unexpected argument '%s'\n", argv[optind]);
        main_usage(stderr);
        return 1;
    }
    if (check) {
        if (!path) {
            fprintf(stderr, "cairn: -t needs -c FILE\n");
            return 1;
        }
        return server_check_config(path);
    }
    return server_run(path);
}
