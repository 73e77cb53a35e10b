/*
 * persist_logcheck.c — is the damage in a store's LevelDB logs only a torn tail?
 *
 * LevelDB's write-ahead log is a sequence of 32 KiB blocks of physical records: a 7-byte header
 * (masked CRC-32C of type and data, little-endian; data length, 2 bytes; type: FULL, FIRST,
 * MIDDLE, LAST) and the data; a block's last < 7 bytes are zero padding. A write cut short (a
 * full disk, a crash) leaves a last record that runs past the end of the file, or a fragmented
 * record without its end: a torn tail. LevelDB with paranoid checks refuses to open some of
 * those; without them its recovery drops the torn bytes — and also whatever follows a bad
 * record in its block, which for damage in the middle of a log means records that may have
 * been acknowledged. So Cairn lets LevelDB repair a log only when this check says that every
 * log is intact up to a torn tail.
 *
 * Pure reading: no LevelDB calls, no writes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist_internal.h"

#define LOG_BLOCK  32768u
#define LOG_HEADER 7u

enum { T_ZERO = 0, T_FULL = 1, T_FIRST = 2, T_MIDDLE = 3, T_LAST = 4 };

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* Castagnoli, reflected */
        crc_table[i] = c;
    }
}

static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* LevelDB stores CRCs masked, so that a CRC of data holding CRCs does not look like one. */
static uint32_t crc_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Is there a well-formed physical record (right CRC, a known type) at off? */
static bool log_record_ok(const uint8_t *b, size_t n, size_t off)
{
    size_t left = LOG_BLOCK - off % LOG_BLOCK, len;
    uint32_t want;

    if (left < LOG_HEADER || n < off + LOG_HEADER)
        return false;
    want = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 |
           (uint32_t)b[off + 3] << 24;
    len = (size_t)b[off + 4] | (size_t)b[off + 5] << 8;
    return b[off + 6] >= T_FULL && b[off + 6] <= T_LAST && LOG_HEADER + len <= left &&
           off + LOG_HEADER + len <= n && crc_mask(crc32c(0, &b[off + 6], 1 + len)) == want;
}

/*
 * After a bad record at off: does the log hold anything LevelDB's recovery would drop or skip
 * that is real — a well-formed record right behind it, or at any later block start (where the
 * recovery resumes)? If not, the bad record is where the writer died: a torn tail.
 */
static bool log_more_after(const uint8_t *b, size_t n, size_t off)
{
    bool more = false;

    if (n >= off + LOG_HEADER) {
        size_t len = (size_t)b[off + 4] | (size_t)b[off + 5] << 8;
        more = log_record_ok(b, n, off + LOG_HEADER + len);
    }
    for (size_t blk = (off / LOG_BLOCK + 1) * LOG_BLOCK; blk < n && !more; blk += LOG_BLOCK)
        more = log_record_ok(b, n, blk);
    return more;
}

/*
 * One log file in memory (persist_internal.h): 0 when it is intact (*torn false) or intact up to a
 * torn tail (*torn true, *at where the tail starts); -EBADMSG when a bad record is followed by more
 * of the log
 * (*at is where).
 */
int persist__log_check(const uint8_t *b, size_t n, bool *torn, size_t *at)
{
    size_t off = 0;

    if (!crc_table[1])
        crc_init();
    bool in_frag = false;
    int rc = 0;

    *torn = false;
    while (off < n && rc == 0 && !*torn) {
        size_t left = LOG_BLOCK - off % LOG_BLOCK;
        uint8_t type;

        if (left < LOG_HEADER) { /* the block's zero trailer */
            off += left;
            continue;
        }
        *at = off;
        if (!log_record_ok(b, n, off)) {
            bool zeros = true; /* preallocated space: nothing was written there */
            for (size_t i = off; i < n && zeros; i++)
                zeros = b[i] == 0;
            if (zeros)
                break;
            if (log_more_after(b, n, off))
                rc = -EBADMSG;
            else
                *torn = true;
            continue;
        }
        type = b[off + 6];
        /* a record without its end with a whole record after it: the writer went on past a
         * failed write, and what follows may have been acknowledged */
        if (((type == T_FULL || type == T_FIRST) && in_frag) ||
            ((type == T_MIDDLE || type == T_LAST) && !in_frag)) {
            rc = -EBADMSG;
            continue;
        }
        in_frag = type == T_FIRST || type == T_MIDDLE;
        off += LOG_HEADER + ((size_t)b[off + 4] | (size_t)b[off + 5] << 8);
    }
    if (rc == 0 && !*torn && in_frag)
        *torn = true; /* ends inside a fragmented record: LevelDB drops it silently */
    return rc;
}

int persist__logs_torn_only(const char *dir, char *why, size_t whylen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0, torn = 0;

    why[0] = '\0';
    if (!d)
        return -errno;
    while (rc >= 0 && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), n = 0, at = 0;
        char path[4096];
        uint8_t *buf = NULL;
        bool t = false;
        long sz;
        FILE *f;

        if (l < 5 || strcmp(de->d_name + l - 4, ".log") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        f = fopen(path, "rbe");
        if (!f) {
            rc = -errno;
            break;
        }
        if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)sz + 1)) != NULL)
            n = fread(buf, 1, (size_t)sz, f);
        else
            rc = -EIO;
        fclose(f);
        if (rc == 0)
            rc = persist__log_check(buf, n, &t, &at);
        free(buf);
        if (rc == -EBADMSG)
            snprintf(why, whylen,
                     "%s has a bad record at offset %zu of %zu, with more after it (not a torn "
                     "tail)",
                     de->d_name, at, n);
        else if (rc == 0 && t)
            torn++;
    }
    closedir(d);
    return rc < 0 ? rc : torn;
}
