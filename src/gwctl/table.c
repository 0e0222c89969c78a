#include "table.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Workers /stats may list: more is not a gatewayd's answer. */
#define TABLE_MAX_WORKERS 1024
/* Workers shown a column each; past this many, the least and the most of
 * them (--json has each). */
#define TABLE_COLUMNS 8
#define TABLE_CELL 10

void ctl_table_span(int64_t s, char *out, size_t cap)
{
    static const struct {
        int64_t secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t i = 0;

    while (i < 3 && s < units[i].secs)
        i++;
    if (i == 3 || s % units[i].secs / units[i + 1].secs == 0)
        snprintf(out, cap, "%lld%c", (long long)(s / units[i].secs),
                 units[i].unit);
    else
        snprintf(out, cap, "%lld%c %lld%c", (long long)(s / units[i].secs),
                 units[i].unit,
                 (long long)(s % units[i].secs / units[i + 1].secs),
                 units[i + 1].unit);
}

double ctl_table_quantile(const double *le, const double *counts, size_t n,
                          double q)
{
    double total = 0, want, seen = 0;

    for (size_t i = 0; i <= n; i++)
        total += counts[i];
    if (total <= 0)
        return 0;
    want = q * total;
    for (size_t i = 0; i < n; i++) {
        seen += counts[i];
        if (seen >= want)
            return le[i];
    }
    return -1;
}

/* A member that is a number, or NULL. */
static const cJSON *table_number(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNumber(it) ? it : NULL;
}

static void table_count(gw_buf_t *out, double v, int width)
{
    gw_buf_printf(out, " %*.0f", width, v);
}

/* The width of the first column: the longest counter name of a worker. */
static int table_name_width(const cJSON *worker)
{
    const cJSON *it;
    int w = 8;

    cJSON_ArrayForEach(it, worker)
    {
        if (cJSON_IsNumber(it) && it->string && (int)strlen(it->string) > w)
            w = (int)strlen(it->string);
    }
    return w;
}

/* One counter's row: each worker's value (or, when there are too many to
 * read across, the least and the most of them) and the total; 0 when all
 * are zero and the row is left out. */
static int table_row(const cJSON *workers, const cJSON *totals,
                     const char *name, int all, int nw, gw_buf_t *out)
{
    int wide = cJSON_GetArraySize(workers) > TABLE_COLUMNS, any = 0, n = 0;
    const cJSON *w, *t = table_number(totals, name);
    const cJSON *columns = wide ? NULL : workers;
    double sum = 0, lo = 0, hi = 0;

    cJSON_ArrayForEach(w, workers)
    {
        const cJSON *v = table_number(w, name);
        double d = v != NULL ? v->valuedouble : 0;

        any |= d != 0;
        sum += d;
        lo = n == 0 || d < lo ? d : lo;
        hi = n++ == 0 || d > hi ? d : hi;
    }
    if (!any && !all)
        return 0;
    gw_buf_printf(out, "%-*s", nw, name);
    if (wide) {
        table_count(out, lo, TABLE_CELL);
        table_count(out, hi, TABLE_CELL);
    }
    cJSON_ArrayForEach(w, columns)
    {
        const cJSON *v = table_number(w, name);

        table_count(out, v ? v->valuedouble : 0, TABLE_CELL);
    }
    table_count(out, t != NULL ? t->valuedouble : sum, TABLE_CELL);
    gw_buf_printf(out, "\n");
    return 1;
}

static void table_head(const cJSON *workers, int nw, gw_buf_t *out)
{
    int wide = cJSON_GetArraySize(workers) > TABLE_COLUMNS;
    const cJSON *w, *columns = wide ? NULL : workers;
    char head[32];

    gw_buf_printf(out, "%-*s", nw, "");
    if (wide)
        gw_buf_printf(out, " %*s %*s", TABLE_CELL, "worker min", TABLE_CELL,
                      "worker max");
    cJSON_ArrayForEach(w, columns)
    {
        const cJSON *id = table_number(w, "id");

        snprintf(head, sizeof(head), "worker %.0f", id ? id->valuedouble : 0);
        gw_buf_printf(out, " %*s", TABLE_CELL, head);
    }
    gw_buf_printf(out, " %*s\n", TABLE_CELL, "total");
}

static void table_workers(const cJSON *workers, const cJSON *totals, int all,
                          gw_buf_t *out)
{
    const cJSON *first = cJSON_GetArrayItem(workers, 0), *it;
    int nw = table_name_width(first), hidden = 0;

    table_head(workers, nw, out);
    cJSON_ArrayForEach(it, first)
    {
        if (!cJSON_IsNumber(it) || it->string == NULL ||
            strcmp(it->string, "id") == 0)
            continue;
        hidden += !table_row(workers, totals, it->string, all, nw, out);
    }
    if (hidden > 0)
        gw_buf_printf(out,
                      "(%d counter%s at zero everywhere not shown; "
                      "--all shows them)\n",
                      hidden, hidden == 1 ? "" : "s");
}

/* "name value" pairs of a thread's object (acceptor, broker) on one
 * wrapped paragraph. */
static void table_pairs(const char *title, const cJSON *obj, int all,
                        gw_buf_t *out)
{
    const cJSON *it;
    size_t col = 0;
    int shown = 0;

    if (!cJSON_IsObject(obj))
        return;
    gw_buf_printf(out, "\n%s:", title);
    col = strlen(title) + 1;
    cJSON_ArrayForEach(it, obj)
    {
        char pair[160];
        int n;

        if (!cJSON_IsNumber(it) || it->string == NULL ||
            (!all && it->valuedouble == 0))
            continue;
        n = snprintf(pair, sizeof(pair), " %s %.0f", it->string,
                     it->valuedouble);
        if (col + (size_t)n > 78) {
            gw_buf_printf(out, "\n ");
            col = 1;
        }
        gw_buf_append(out, pair, strlen(pair));
        col += (size_t)n;
        shown++;
    }
    gw_buf_printf(out, "%s\n", shown ? "" : " all zero");
}

static void table_closes(const cJSON *totals, gw_buf_t *out)
{
    const cJSON *codes =
                    cJSON_GetObjectItemCaseSensitive(totals, "closes_by_code"),
                *it;
    int shown = 0;

    if (!cJSON_IsObject(codes))
        return;
    gw_buf_printf(out, "\ncloses by code:");
    cJSON_ArrayForEach(it, codes)
    {
        if (cJSON_IsNumber(it) && it->string && it->valuedouble != 0) {
            gw_buf_printf(out, " %s x%.0f", it->string, it->valuedouble);
            shown++;
        }
    }
    gw_buf_printf(out, "%s\n", shown ? "" : " none");
}

/* Up to 64 numbers of a JSON array into v; their count, or -1. */
static int table_numbers(const cJSON *arr, double *v, int cap)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsArray(arr))
        return -1;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNumber(it) || n == cap)
            return -1;
        v[n++] = it->valuedouble;
    }
    return n;
}

static void table_bound(gw_buf_t *out, double bound, double last)
{
    if (bound < 0)
        gw_buf_printf(out, "> %.0f us", last);
    else
        gw_buf_printf(out, "<= %.0f us", bound);
}

static void table_latency(const cJSON *stats, gw_buf_t *out)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(stats, "fanout_latency");
    double le[64], counts[65], total = 0;
    int nle =
        table_numbers(cJSON_GetObjectItemCaseSensitive(h, "le_us"), le, 64);
    int nc = table_numbers(cJSON_GetObjectItemCaseSensitive(h, "counts"),
                           counts, 65);

    if (nle < 1 || nc != nle + 1)
        return;
    for (int i = 0; i < nc; i++)
        total += counts[i];
    gw_buf_printf(out, "\nfan-out latency:");
    if (total <= 0) {
        gw_buf_printf(out, " no events delivered yet\n");
        return;
    }
    gw_buf_printf(out, " p50 ");
    table_bound(out, ctl_table_quantile(le, counts, (size_t)nle, 0.5),
                le[nle - 1]);
    gw_buf_printf(out, ", p99 ");
    table_bound(out, ctl_table_quantile(le, counts, (size_t)nle, 0.99),
                le[nle - 1]);
    gw_buf_printf(out, " (%.0f events)\n", total);
}

int ctl_table_stats(const cJSON *stats, int all, gw_buf_t *out)
{
    const cJSON *workers = cJSON_GetObjectItemCaseSensitive(stats, "workers");
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(stats, "totals");
    int n = cJSON_GetArraySize(workers);

    if (!cJSON_IsArray(workers) || n < 1 || n > TABLE_MAX_WORKERS)
        return GW_EPARSE;
    table_workers(workers, totals, all, out);
    table_closes(totals, out);
    table_pairs("acceptor", cJSON_GetObjectItemCaseSensitive(stats, "acceptor"),
                all, out);
    table_pairs("broker", cJSON_GetObjectItemCaseSensitive(stats, "broker"),
                all, out);
    table_latency(stats, out);
    return 0;
}

static void table_field(gw_buf_t *out, const char *label, const cJSON *v)
{
    if (cJSON_IsString(v))
        gw_buf_printf(out, "%-12s %s\n", label, v->valuestring);
    else if (cJSON_IsNumber(v))
        gw_buf_printf(out, "%-12s %.0f\n", label, v->valuedouble);
}

/* Each link's state, and how long it has been in it by the gateway's
 * clock. */
static void table_links(const cJSON *health, gw_buf_t *out)
{
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(health, "links");
    const cJSON *since =
        cJSON_GetObjectItemCaseSensitive(health, "links_since");
    const cJSON *now = table_number(health, "time"), *it;

    cJSON_ArrayForEach(it, links)
    {
        const cJSON *t = it->string ? table_number(since, it->string) : NULL;
        char span[32];

        if (!cJSON_IsString(it) || it->string == NULL)
            continue;
        gw_buf_printf(out, "%-12s %s", it->string, it->valuestring);
        /* Within a few thousand years: a span, not an overflow. */
        if (t != NULL && now != NULL && now->valuedouble >= t->valuedouble &&
            now->valuedouble - t->valuedouble < 1e15 &&
            strcmp(it->valuestring, "disabled") != 0) {
            ctl_table_span(
                (int64_t)((now->valuedouble - t->valuedouble) / 1000), span,
                sizeof(span));
            gw_buf_printf(out, " for %s", span);
        }
        gw_buf_printf(out, "\n");
    }
}

void ctl_table_health(const cJSON *health, gw_buf_t *out)
{
    const cJSON *uptime = table_number(health, "uptime");
    char span[32];

    table_field(out, "status",
                cJSON_GetObjectItemCaseSensitive(health, "status"));
    table_field(out, "instance",
                cJSON_GetObjectItemCaseSensitive(health, "instance"));
    table_field(out, "version",
                cJSON_GetObjectItemCaseSensitive(health, "version"));
    if (uptime != NULL && uptime->valuedouble >= 0 &&
        uptime->valuedouble < 1e15) {
        ctl_table_span((int64_t)uptime->valuedouble, span, sizeof(span));
        gw_buf_printf(out, "%-12s %s\n", "uptime", span);
    }
    table_field(out, "connections",
                cJSON_GetObjectItemCaseSensitive(health, "connections"));
    table_field(out, "sessions",
                cJSON_GetObjectItemCaseSensitive(health, "sessions"));
    table_links(health, out);
}
