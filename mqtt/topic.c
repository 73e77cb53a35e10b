/*
 * topic.c — topic names, topic filters and matching (MQTT 3.1.1 section 4.7).
 *
 * Name validation runs on every PUBLISH, so it shares the eight-bytes-at-a-time ASCII path of
 * utf8.c and checks for wildcards in the same pass. Filters are validated at SUBSCRIBE time
 * only and take the plain route.
 */
#include "internal.h"

/* Some byte of v is non-ASCII, NUL, '+' or '#': the chunk needs a closer look. */
static inline uint64_t name_chunk_suspect(uint64_t v)
{
    return (v & MQTT__HIGHS) | mqtt__has_zero(v) | mqtt__has_byte(v, '+') | mqtt__has_byte(v, '#');
}

int mqtt_topic_name_validate(const uint8_t *p, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return -MQTT_ETOPIC_EMPTY; /* [MQTT-4.7.3-1] */
    while (i < len) {
        if (len - i >= 8) {
            if (!name_chunk_suspect(mqtt__load64(p + i))) {
                i += 8;
                continue;
            }
        } else if (len >= 8 && !name_chunk_suspect(mqtt__load64(p + len - 8))) {
            /* The tail, read as the last eight bytes; those before i were already checked. */
            return 0;
        }
        uint8_t b = p[i];
        if (b < 0x80) {
            if (b == 0)
                return -MQTT_EUTF8_NUL; /* [MQTT-1.5.3-2] */
            if (b == '+' || b == '#')
                return -MQTT_ETOPIC_WILDCARD; /* [MQTT-3.3.2-2] [MQTT-4.7.1-1] */
            i++;
            continue;
        }
        int n = mqtt__utf8_seq(p + i, len - i); /* [MQTT-1.5.3-1] */
        if (n < 0)
            return n;
        i += (size_t)n;
    }
    return 0;
}

int mqtt_topic_filter_validate(const uint8_t *p, size_t len)
{
    int rc;

    if (len == 0)
        return -MQTT_ETOPIC_EMPTY;   /* [MQTT-4.7.3-1] */
    rc = mqtt_utf8_validate(p, len); /* [MQTT-1.5.3-1] [MQTT-1.5.3-2] */
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < len; i++) {
        bool level_start = i == 0 || p[i - 1] == '/';
        bool level_end = i + 1 == len || p[i + 1] == '/';
        if (p[i] == '+' && !(level_start && level_end))
            return -MQTT_EFILTER; /* '+' must fill its whole level [MQTT-4.7.1-3] */
        if (p[i] == '#' && !(level_start && i + 1 == len))
            return -MQTT_EFILTER; /* '#' alone in the last level [MQTT-4.7.1-2] */
    }
    return 0;
}

/*
 * Walk filter and topic level by level. Both are valid, so a '+' or '#' always stands alone in
 * its level. '#' matches what is left, including nothing: "a/#" matches "a" as well as "a/b"
 * (section 4.7.1.2). '+' matches exactly one level, which may be empty.
 */
bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen)
{
    size_t fi = 0, ti = 0;

    if (flen == 0)
        return false;
    /* A filter starting with a wildcard must not match a topic starting with '$' [MQTT-4.7.2-1] */
    if (tlen > 0 && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    for (;;) {
        /* fi and ti are each at the start of a level */
        if (fi < flen && filter[fi] == '#')
            return true;
        if (fi < flen && filter[fi] == '+') {
            fi++;
            while (ti < tlen && topic[ti] != '/')
                ti++;
        } else {
            while (fi < flen && filter[fi] != '/') {
                if (ti >= tlen || topic[ti] != filter[fi])
                    return false;
                fi++;
                ti++;
            }
            if (ti < tlen && topic[ti] != '/')
                return false;
        }
        /* both at the end of a level: a '/' or the end of the string */
        if (fi == flen)
            return ti == tlen;
        if (ti == tlen)
            return flen - fi == 2 && filter[fi + 1] == '#'; /* "/#" matches the parent */
        fi++;
        ti++;
    }
}

void mqtt_level_iter_init(struct mqtt_level_iter *it, struct mqtt_str s)
{
    it->p = s.p;
    it->end = s.p + s.len;
    it->more = true;
}

bool mqtt_level_next(struct mqtt_level_iter *it, struct mqtt_str *level)
{
    const uint8_t *slash;
    bool ok = it->more;

    if (!ok)
        goto out;
    slash = it->p ? memchr(it->p, '/', (size_t)(it->end - it->p)) : NULL;
    level->p = it->p;
    if (slash) {
        level->len = (size_t)(slash - it->p);
        it->p = slash + 1;
    } else {
        level->len = (size_t)(it->end - it->p);
        it->p = it->end;
        it->more = false;
    }
out:
    return ok;
}
