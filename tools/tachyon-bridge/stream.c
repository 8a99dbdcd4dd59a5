/* stream.c - the bridge's framing on NATS; see stream.h. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool stream_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_hex64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len != STREAM_ID_HEX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d;
        if (s[i] >= '0' && s[i] <= '9')
            d = (unsigned)(s[i] - '0');
        else if (s[i] >= 'a' && s[i] <= 'f')
            d = (unsigned)(s[i] - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

bool stream_prefix_valid(const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > STREAM_MAX_PREFIX || prefix[0] == '.' || prefix[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = prefix[i];
        if (c <= ' ' || c > '~' || c == '*' || c == '>')
            return false;
        if (c == '.' && prefix[i + 1] == '.')
            return false;
    }
    return true;
}

void stream_data_subject(char *buf, size_t cap, const char *prefix, uint32_t type_id)
{
    snprintf(buf, cap, "%s.%" PRIu32, prefix, type_id);
}

void stream_end_subject(char *buf, size_t cap, const char *prefix)
{
    snprintf(buf, cap, "%s.%s", prefix, STREAM_END_TOKEN);
}

subject_kind_t stream_parse_subject(const char *subject, const char *prefix, uint32_t *type_id)
{
    size_t plen = strlen(prefix);
    if (strncmp(subject, prefix, plen) != 0 || subject[plen] != '.')
        return SUBJECT_INVALID;
    const char *token = subject + plen + 1;
    size_t tlen = strlen(token);
    if (tlen == strlen(STREAM_END_TOKEN) && memcmp(token, STREAM_END_TOKEN, tlen) == 0)
        return SUBJECT_END;
    uint64_t v;
    if (!stream_parse_u64(token, tlen, &v) || v > UINT32_MAX)
        return SUBJECT_INVALID;
    *type_id = (uint32_t)v;
    return SUBJECT_DATA;
}

void stream_format_marker(char *buf, size_t cap, const stream_marker_t *m)
{
    snprintf(buf, cap, "%016" PRIx64 " %" PRIu64 " %" PRIu64, m->id, m->seq, m->base);
}

bool stream_parse_marker(const char *value, stream_marker_t *out)
{
    const char *sp1 = strchr(value, ' ');
    if (!sp1)
        return false;
    const char *seq = sp1 + 1;
    const char *sp2 = strchr(seq, ' ');
    if (!sp2)
        return false;
    const char *base = sp2 + 1;
    stream_marker_t m;
    if (!parse_hex64(value, (size_t)(sp1 - value), &m.id) ||
        !stream_parse_u64(seq, (size_t)(sp2 - seq), &m.seq) ||
        !stream_parse_u64(base, strlen(base), &m.base))
        return false;
    if (m.seq == 0 || m.base == 0 || m.base > m.seq)
        return false;
    *out = m;
    return true;
}

int stream_format_ack(char *buf, size_t cap, ack_kind_t kind, uint64_t seq)
{
    return snprintf(buf, cap, "%s %" PRIu64, kind == ACK_ACK ? "ack" : "nak", seq);
}

bool stream_parse_ack(const char *data, size_t len, ack_kind_t *kind, uint64_t *seq)
{
    if (len < 5 || data[3] != ' ')
        return false;
    if (memcmp(data, "ack", 3) == 0)
        *kind = ACK_ACK;
    else if (memcmp(data, "nak", 3) == 0)
        *kind = ACK_NAK;
    else
        return false;
    return stream_parse_u64(data + 4, len - 4, seq);
}

void stream_format_js_id(char *buf, size_t cap, uint64_t id, uint64_t seq)
{
    snprintf(buf, cap, "%016" PRIx64 "-%" PRIu64, id, seq);
}

bool stream_parse_js_id(const char *value, uint64_t id, uint64_t *seq)
{
    uint64_t got;
    const char *dash = strchr(value, '-');
    if (!dash || !parse_hex64(value, (size_t)(dash - value), &got) || got != id)
        return false;
    return stream_parse_u64(dash + 1, strlen(dash + 1), seq);
}
