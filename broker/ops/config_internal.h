/*
 * config_internal.h — shared by the files of the config parser only: config.c (the table of
 * Cairn's options, one line, the listener blocks), config_mosquitto.c (the rest of Mosquitto
 * 2.0's options: the ones Cairn implements beyond the first table, and the ones it refuses or
 * ignores with a reason) and config_include.c (include_dir). Not for the rest of the broker.
 *
 * Positions: every line read, in whatever file, gets the next number of one counter shared by
 * the files of one load (config.h, struct config_lines). A file starting, or resuming after an
 * include_dir, opens a span {file, first position, first line}; config_where() maps a position
 * back to FILE:LINE. With no include the position is the line number.
 */
#ifndef CAIRN_CONFIG_INTERNAL_H
#define CAIRN_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_kind {
    K_BOOL,
    K_U16,
    K_U32,
    K_U64,
    K_DURATION,
    K_STR,
    K_WARN,    /* accepted with a warning saying why it is ignored (note) */
    K_SPECIAL, /* config.c's config_special(), then config_mosquitto_special() */
    K_U8,
    K_REFUSE, /* refused with the sentence in note, whatever the value */
    K_NOTYET, /* belongs to a feature Cairn does not have yet: note names it */
};
/*
 * W_LISTENER: a field of struct config_listener; inside a listener block that listener's, before
 * any the default listener's (made on first use, as the TLS options do).
 */
enum config_where { W_GLOBAL, W_TLS, W_AUTH, W_LISTENER };

struct config_option {
    const char *name;
    enum config_kind kind;
    enum config_where where;
    size_t offset;    /* into struct config (W_GLOBAL), config_security (W_TLS, W_AUTH) or
                         config_listener (W_LISTENER) */
    uint64_t max;     /* numbers: largest accepted value */
    const char *note; /* K_WARN: why Cairn ignores it; K_REFUSE: the sentence; K_NOTYET: the
                         feature */
    size_t line_off;  /* W_TLS, W_AUTH: where its line goes (config_security.line) */
};

/* Parser state for one file. Included files get their own, sharing c, pos and the flags. */
struct config_parser {
    const char *name;
    unsigned line;  /* the POSITION of the line being read: what config_lines records */
    unsigned fline; /* its line number in this file: what errors say */
    struct config *c;
    struct config_listener *cur; /* inside a listener block, else NULL */
    size_t bridge;      /* 1 + the index of the bridge block ("connection") being read; 0: none */
    long default_index; /* the listener "port"/"bind_address"/outside TLS options made, or -1 */
    bool log_dest_seen;
    bool log_type_seen;
    char *err;
    size_t errlen;
    /* shared by every file of one load */
    unsigned *pos;             /* the last position given out */
    unsigned depth;            /* 0: the main file; 1: a file include_dir read */
    struct config_parser *top; /* the main file's parser (flags, default_index live there) */
};

/* ---- config.c ----------------------------------------------------------------------------- */
int config_fail(struct config_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int config_parse_bool(const char *v, bool *out);
int config_parse_u64(const char *v, uint64_t max, uint64_t *out);
int config_set_str(struct config_parser *p, char **slot, const char *v);
/* Split "A B" in place: returns B (NULL when there is none); A is NUL-terminated. */
char *config_split(char *s);
struct config_listener *config_default_listener(struct config_parser *p);
/* Parse text as one file named p->name (a span is opened for it). 0 or -EINVAL (p->err). */
int config_parse_text(struct config_parser *p, const char *text);
/* Open a span: the lines from the next position on are p->name's, from line p->line + 1. */
int config_span_open(struct config_parser *p);
/* Read a whole file (NUL-terminated copy in *out, caller frees). 0 or -errno / -EILSEQ. */
int config_read_file(const char *path, char **out);

/* ---- config_mosquitto.c ------------------------------------------------------------------- */
/* The option named name in the second table, or NULL. */
const struct config_option *config_mosquitto_find(const char *name);
/* The K_SPECIAL options of the second table. 0, or -EINVAL with p->err set. */
int config_mosquitto_special(struct config_parser *p, const char *opt, char *v);
/* K_REFUSE and K_NOTYET: the error naming the missing feature (name: as written). -EINVAL. */
int config_mosquitto_refuse(struct config_parser *p, const struct config_option *o,
                            const char *name);
/* Defaults of the fields the second table fills (from config_defaults and config_new_listener). */
void config_mosquitto_defaults(struct config *c);
void config_mosquitto_listener_defaults(struct config_listener *l);
void config_mosquitto_listener_cleanup(struct config_listener *l);
void config_mosquitto_cleanup(struct config *c);
/* After the last line: per-listener resolution of what the second table added. 0 or -ENOMEM. */
int config_mosquitto_finish(struct config *c);

/* ---- config_bridge.c ---------------------------------------------------------------------- */
/* A bridge option (connection, address, topic, bridge_*, ...). 0, or -EINVAL with p->err set
 * ("unknown option" for a name that is none). */
int config_bridge_option(struct config_parser *p, const char *opt, char *v);
/* After the last line: defaults that depend on the whole block (client ids) and the checks
 * Mosquitto makes (an address and a topic each; local client ids unique). 0 or -EINVAL. */
int config_bridge_finish(struct config_parser *p);
void config_bridge_cleanup(struct config *c);

/* ---- config_include.c --------------------------------------------------------------------- */
/* include_dir DIR: every *.conf in it, in Mosquitto's order. 0 or -EINVAL with p->err set. */
int config_include_dir(struct config_parser *p, const char *dir);

#endif
