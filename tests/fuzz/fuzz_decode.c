/*
 * fuzz_decode.c — the input is a byte stream from a peer. Decode packets in a loop as a server
 * does and, for every packet that decodes, check what must hold:
 *   - every shorter prefix is "partial"; the packet's own remaining length as the maximum
 *     accepts it, one less refuses it as too large;
 *   - SUBSCRIBE/UNSUBSCRIBE filters iterate to exactly the count decoded, each one valid;
 *   - a PUBLISH topic is a valid name that matches itself (and '#' unless it starts with '$');
 *   - re-encoding gives the same first byte and body, decodes again to the same length, and
 *     never writes when the buffer is one byte short;
 *   - the same stream arriving in pieces (sizes drawn from the input) yields the same packets
 *     and the same final error as the whole buffer.
 * A broken invariant aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mqtt.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_decode: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_topics(const struct mqtt_packet *pkt)
{
    struct mqtt_topics_iter it;
    struct mqtt_str f;
    uint8_t qos;
    size_t n = 0;

    mqtt_topics_iter_init(&it, &pkt->u.topics);
    while (mqtt_topics_next(&it, &f, &qos)) {
        CHECK(mqtt_topic_filter_validate(f.p, f.len) == 0);
        CHECK(qos <= 2);
        CHECK(pkt->type == MQTT_SUBSCRIBE || qos == 0);
        n++;
    }
    CHECK(n == pkt->u.topics.count);
    CHECK(n > 0);
    CHECK(it.p == pkt->u.topics.payload.p + pkt->u.topics.payload.len);
}

static void check_publish(const struct mqtt_packet *pkt)
{
    struct mqtt_str t = pkt->u.publish.topic;

    CHECK(mqtt_topic_name_validate(t.p, t.len) == 0);
    CHECK(mqtt_topic_filter_validate(t.p, t.len) == 0); /* a name is also a filter */
    CHECK(mqtt_topic_match(t.p, t.len, t.p, t.len));
    CHECK(mqtt_topic_match((const uint8_t *)"#", 1, t.p, t.len) == (t.p[0] != '$'));
    CHECK(pkt->u.publish.qos <= 2);
    CHECK((pkt->u.publish.qos == 0) == (pkt->u.publish.packet_id == 0));
}

static void check_reencode(const uint8_t *buf, size_t n, const struct mqtt_packet *pkt)
{
    size_t rem = pkt->remaining_length, hl = n - rem;
    size_t need = mqtt_encode_packet(NULL, 0, pkt);
    struct mqtt_packet again;
    uint8_t *out, *small;

    CHECK(need > 0);
    CHECK(need == 1 + mqtt_remaining_length_size(rem) + rem);
    out = malloc(need);
    CHECK(out != NULL);
    CHECK(mqtt_encode_packet(out, need, pkt) == need);
    CHECK(out[0] == buf[0]);
    CHECK(memcmp(out + need - rem, buf + hl, rem) == 0);
    CHECK(mqtt_decode(out, need, 0, &again) == (int)need);
    CHECK(again.type == pkt->type && again.remaining_length == rem);
    /* one byte short: the size comes back and nothing is written (ASan watches) */
    small = malloc(need - 1 ? need - 1 : 1);
    CHECK(small != NULL);
    CHECK(mqtt_encode_packet(small, need - 1, pkt) == need);
    free(small);
    free(out);
}

static void check_packet(const uint8_t *buf, size_t n, const struct mqtt_packet *pkt)
{
    struct mqtt_packet tmp;
    size_t rem = pkt->remaining_length;

    CHECK(mqtt_decode(buf, n - 1, 0, &tmp) == -MQTT_EPARTIAL);
    CHECK(mqtt_decode(buf, n / 2, 0, &tmp) == -MQTT_EPARTIAL);
    CHECK(mqtt_decode(buf, 1, 0, &tmp) == -MQTT_EPARTIAL);
    if (rem > 0) {
        CHECK(mqtt_decode(buf, n, rem, &tmp) == (int)n);
        CHECK(mqtt_decode(buf, n, rem - 1, &tmp) == -MQTT_ETOOLARGE);
    }
    switch (pkt->type) {
    case MQTT_PUBLISH:
        check_publish(pkt);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        check_topics(pkt);
        break;
    default:
        break;
    }
    check_reencode(buf, n, pkt);
}

static void check_error(int rc, const struct mqtt_packet *pkt)
{
    enum mqtt_err_class c = mqtt_error_class(rc);

    CHECK(c == MQTT_CLASS_MALFORMED || c == MQTT_CLASS_PROTOCOL || c == MQTT_CLASS_TOO_LARGE);
    CHECK(strcmp(mqtt_strerror(rc), "unknown error") != 0);
    if (mqtt_error_connack(rc) >= 0) {
        CHECK(pkt->type == MQTT_CONNECT);
        CHECK(pkt->u.connect.protocol_name.len == 4 || pkt->u.connect.protocol_name.len == 6);
    }
}

#define MAX_RESULTS 4096

/*
 * Feed data as a peer's reads would arrive: piece by piece (sizes from a hash of the input),
 * decoding whatever is whole after each piece. The results must be those of the whole buffer.
 */
static void check_pieces(const uint8_t *data, size_t size, const int *want, size_t nwant)
{
    uint32_t h = 2166136261u;
    size_t have = 0, off = 0, k = 0;

    for (size_t i = 0; i < size && i < 64; i++)
        h = (h ^ data[i]) * 16777619u;
    while (have < size) {
        h = h * 1103515245u + 12345u;
        size_t piece = 1 + (h >> 16) % 17;
        have = have + piece < size ? have + piece : size;
        for (;;) {
            struct mqtt_packet pkt;
            int rc = mqtt_decode(data + off, have - off, 0, &pkt);
            if (rc == -MQTT_EPARTIAL && have < size)
                break;
            CHECK(k < nwant);
            CHECK(rc == want[k]);
            k++;
            if (rc <= 0)
                return; /* the stream ends here, as it did whole */
            off += (size_t)rc;
        }
    }
}

/*
 * The head of a PUBLISH too large to keep (mqtt_decode_publish_head): views inside the input,
 * the head within the packet, and agreement with a full decode when the whole packet is there.
 */
static void check_publish_head(const uint8_t *data, size_t size)
{
    struct mqtt_publish head;
    struct mqtt_packet pkt;
    size_t total = 0;
    int hl = mqtt_decode_publish_head(data, size, &head, &total);
    int rc;

    if (hl < 0)
        return;
    CHECK((size_t)hl <= size && (size_t)hl <= total);
    CHECK(head.topic.p >= data && head.topic.p + head.topic.len <= data + hl);
    CHECK(head.payload.p == NULL && (size_t)hl + head.payload.len == total);
    if (total > size)
        return;
    rc = mqtt_decode(data, size, 0, &pkt);
    CHECK(rc == (int)total && pkt.type == MQTT_PUBLISH);
    CHECK(pkt.u.publish.qos == head.qos && pkt.u.publish.packet_id == head.packet_id);
    CHECK(pkt.u.publish.payload.len == head.payload.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int results[MAX_RESULTS]; /* the fuzz harness may have state; the codec has none */
    size_t off = 0, n = 0;

    check_publish_head(data, size);

    while (n < MAX_RESULTS) {
        struct mqtt_packet pkt;
        int rc = mqtt_decode(data + off, size - off, 0, &pkt);
        results[n++] = rc;
        if (rc == -MQTT_EPARTIAL)
            break;
        if (rc < 0) {
            check_error(rc, &pkt);
            break;
        }
        CHECK((size_t)rc <= size - off);
        check_packet(data + off, (size_t)rc, &pkt);
        off += (size_t)rc;
    }
    if (n < MAX_RESULTS)
        check_pieces(data, size, results, n);
    return 0;
}
