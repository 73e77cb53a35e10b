/*
 * persist_leveldb.c — the LevelDB backend of persist.h (stub: every call fails for now).
 */
#include <errno.h>
#include <stdio.h>

#include "persist.h"

int persist_open(const struct persist_options *opt, struct persist **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        snprintf(err, errlen, "persistence not implemented yet");
    return -ENOSYS;
}

void persist_close(struct persist *p)
{
}

void persist_session_put(struct persist *p, struct mqtt_str cid, const struct persist_session *s)
{
}

void persist_session_del(struct persist *p, struct mqtt_str cid)
{
}

void persist_sub_put(struct persist *p, struct mqtt_str cid, struct mqtt_str filter, uint8_t qos)
{
}

void persist_sub_del(struct persist *p, struct mqtt_str cid, struct mqtt_str filter)
{
}

void persist_enqueue(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e,
                     const struct persist_msg *m)
{
}

void persist_queue_update(struct persist *p, struct mqtt_str cid, const struct persist_qentry *e)
{
}

void persist_dequeue(struct persist *p, struct mqtt_str cid, uint64_t seq, uint64_t msg_id)
{
}

void persist_inbound_put(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
}

void persist_inbound_del(struct persist *p, struct mqtt_str cid, uint16_t packet_id)
{
}

void persist_retain_put(struct persist *p, const struct persist_msg *m)
{
}

void persist_retain_del(struct persist *p, struct mqtt_str topic)
{
}

bool persist_batch_empty(const struct persist *p)
{
    return true;
}

int persist_commit(struct persist *p, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "persistence not implemented yet");
    return -ENOSYS;
}

int persist_restore(struct persist *p, const struct persist_restore_ops *ops, void *ctx,
                    uint64_t *max_msg_id, char *err, size_t errlen)
{
    if (max_msg_id)
        *max_msg_id = 0;
    if (err && errlen)
        snprintf(err, errlen, "persistence not implemented yet");
    return -ENOSYS;
}

int persist_queue_read(struct persist *p, struct mqtt_str cid, uint64_t from_seq, size_t max,
                       persist_queue_cb cb, void *ctx)
{
    return -ENOSYS;
}
