#include "report.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "plot.h"
#include "util.h"

/* The last second whose reports are in: the one before the current. */
static const run_second_t *report_last_second(const run_t *r, size_t *idx)
{
    size_t now = (size_t)((util_now_us() - r->t0) / 1000000);

    if (now == 0 || now - 1 >= r->nsec)
        return NULL;
    *idx = now - 1;
    return &r->sec[now - 1];
}

void report_progress(run_t *r)
{
    const run_second_t *s;
    size_t i = 0;

    if (!r->tty)
        return;
    s = report_last_second(r, &i);
    fprintf(stderr, "\r[%s %s] %5.1fs  open %-6llu ident/s %-6llu", r->scenario,
            r->phase, (double)(util_now_us() - r->t0) / 1e6,
            (unsigned long long)r->total.open,
            s ? (unsigned long long)s->f.c.identified : 0ull);
    if (s != NULL && s->f.c.deliveries > 0)
        fprintf(stderr, "  deliv/s %-7llu p99 %.1f ms",
                (unsigned long long)s->f.c.deliveries,
                (double)stats_hist_quantile(&s->f.lat, .99) / 1000);
    if (s != NULL && s->sampled)
        fprintf(stderr, "  srv cpu %3.0f%%", 100 * s->srv_cpu_s);
    fputs("   ", stderr);
    fflush(stderr);
}

void report_finish_line(run_t *r)
{
    if (r->tty)
        fputc('\n', stderr);
}

static cJSON *report_machine(void)
{
    cJSON *m = cJSON_CreateObject();
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    struct utsname u;

    cJSON_AddNumberToObject(m, "nproc", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(m, "mem_gib",
                            (double)pages * (double)psize / (1 << 30));
    if (uname(&u) == 0)
        cJSON_AddStringToObject(m, "kernel", u.release);
    return m;
}

static cJSON *report_series(const run_t *r)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; i < r->nsec; i++) {
        const run_second_t *s = &r->sec[i];
        cJSON *o;

        if (s->f.c.attempts == 0 && s->f.c.deliveries == 0 && !s->sampled &&
            s->f.c.identified == 0)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "t", (double)(i + 1));
        cJSON_AddNumberToObject(o, "identified", (double)s->f.c.identified);
        cJSON_AddNumberToObject(o, "deliveries", (double)s->f.c.deliveries);
        if (s->f.lat.count > 0) {
            cJSON_AddNumberToObject(
                o, "p50_ms", (double)stats_hist_quantile(&s->f.lat, .5) / 1e3);
            cJSON_AddNumberToObject(
                o, "p90_ms", (double)stats_hist_quantile(&s->f.lat, .9) / 1e3);
            cJSON_AddNumberToObject(
                o, "p99_ms", (double)stats_hist_quantile(&s->f.lat, .99) / 1e3);
            cJSON_AddNumberToObject(o, "max_ms", (double)s->f.lat.max / 1e3);
        }
        /* relay: the way down alone (the backend's answer to the client) */
        if (s->f.down.count > 0)
            cJSON_AddNumberToObject(
                o, "down_p99_ms",
                (double)stats_hist_quantile(&s->f.down, .99) / 1e3);
        if (s->sampled) {
            cJSON_AddNumberToObject(o, "server_cpu_pct", 100 * s->srv_cpu_s);
            cJSON_AddNumberToObject(o, "server_rss_kb", (double)s->srv_rss_kb);
        }
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The instances of a run that has several, as their WebSocket URLs. */
static cJSON *report_instances(const target_t *t)
{
    cJSON *a = cJSON_CreateArray();
    char url[256];

    for (unsigned i = 0; i < t->ninst; i++) {
        snprintf(url, sizeof(url), "ws://%s:%d%s", t->inst[i].host,
                 t->inst[i].ws_port, t->inst[i].path);
        cJSON_AddItemToArray(a, cJSON_CreateString(url));
    }
    return a;
}

static cJSON *report_server(const run_t *r)
{
    cJSON *s = cJSON_CreateObject();
    char url[256];

    cJSON_AddStringToObject(s, "kind",
                            r->o->target.n > 0 ? "external" : "gatewayd");
    if (r->tgt.ws_port != 0) {
        snprintf(url, sizeof(url), "ws://%s:%d%s", r->tgt.host, r->tgt.ws_port,
                 r->tgt.path);
        cJSON_AddStringToObject(s, "url", url);
    }
    if (r->tgt.tls_port != 0) {
        snprintf(url, sizeof(url), "wss://%s:%d%s", r->tgt.host,
                 r->tgt.tls_port, r->tgt.path);
        cJSON_AddStringToObject(s, "tls_url", url);
    }
    if (r->tgt.pid > 0)
        cJSON_AddNumberToObject(s, "pid", r->tgt.pid);
    if (r->o->target.n == 0)
        cJSON_AddStringToObject(s, "binary", r->o->gatewayd);
    if (r->tgt.ninst > 1)
        cJSON_AddItemToObject(s, "instances", report_instances(&r->tgt));
    if (r->tgt.redis_port > 0)
        cJSON_AddNumberToObject(s, "redis_port", r->tgt.redis_port);
    return s;
}

static cJSON *report_json(const run_t *r)
{
    cJSON *root = cJSON_CreateObject();
    stats_counters_t zero;
    char date[32];
    time_t now = time(NULL);

    memset(&zero, 0, sizeof(zero));
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(root, "tool", "gwbench");
    cJSON_AddStringToObject(root, "scenario", r->scenario);
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddBoolToObject(root, "ok", !r->failed);
    if (r->tgt.keep && r->tgt.dir[0] != '\0')
        cJSON_AddStringToObject(root, "kept_dir", r->tgt.dir);
    cJSON_AddItemToObject(root, "machine", report_machine());
    cJSON_AddItemToObject(root, "server", report_server(r));
    cJSON_AddItemToObject(root, "params", opts_to_json(r->o));
    cJSON_AddItemReferenceToObject(root, "results", r->results);
    cJSON_AddItemToObject(root, "counters",
                          run_counters_json(&zero, &r->total.c));
    cJSON_AddItemToObject(root, "series", report_series(r));
    return root;
}

/* "name: value" lines of an object, nested objects and arrays indented
 * (an array's items named "-"). */
static void report_print(const cJSON *obj, int depth)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        fprintf(stderr, "%*s%-24s", 2 + 2 * depth, "",
                it->string != NULL ? it->string : "-");
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            fputc('\n', stderr);
            report_print(it, depth + 1);
        } else if (cJSON_IsNumber(it)) {
            double v = it->valuedouble;

            if (v == (double)(long long)v && v < 1e15 && v > -1e15)
                fprintf(stderr, " %lld\n", (long long)v);
            else
                fprintf(stderr, " %.3f\n", v);
        } else if (cJSON_IsString(it)) {
            fprintf(stderr, " %s\n", it->valuestring);
        } else {
            fprintf(stderr, " %s\n", cJSON_IsTrue(it) ? "true" : "false");
        }
    }
}

static void report_summary(const run_t *r)
{
    fprintf(stderr, "gwbench %s: %s (%s)\n", r->scenario,
            r->failed ? "FAILED" : "ok",
            r->o->target.n > 0 ? r->o->target.v[0] : r->o->gatewayd);
    report_print(r->results, 0);
}

static int report_emit(const run_t *r, cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);
    FILE *f = stdout;
    int rc = 0;

    if (r->o->json != NULL && (f = fopen(r->o->json, "w")) == NULL) {
        util_warn("cannot write %s", r->o->json);
        free(text);
        return -1;
    }
    if (fprintf(f, "%s\n", text) < 0)
        rc = -1;
    if (f != stdout && fclose(f) != 0)
        rc = -1;
    free(text);
    return rc;
}

int report_write(run_t *r)
{
    cJSON *root = report_json(r);
    int rc = report_emit(r, root);

    cJSON_Delete(root);
    report_summary(r);
    if (r->o->plot != NULL && plot_png(r, r->o->plot) != 0)
        rc = -1;
    return rc;
}
