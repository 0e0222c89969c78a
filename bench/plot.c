#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* A latency in ms for a log axis: gnuplot skips NaN, and 0 has no log. */
static void plot_ms(FILE *f, const stats_hist_t *h, double q)
{
    double v;

    if (h->count == 0) {
        fputs(" NaN", f);
        return;
    }
    v = (q >= 1 ? (double)h->max : (double)stats_hist_quantile(h, q)) / 1e3;
    fprintf(f, " %.3f", v < 0.001 ? 0.001 : v);
}

/* Columns: second, deliveries, p50 p90 p99 max (ms), identified, server
 * CPU %. Latency is of deliveries when the run had any, else of
 * connects. */
static int plot_data(const run_t *r, const char *path, int deliveries)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    for (size_t i = 0; i < r->nsec; i++) {
        const run_second_t *s = &r->sec[i];
        const stats_hist_t *h = deliveries ? &s->f.lat : &s->f.conn;

        fprintf(f, "%zu %llu", i + 1, (unsigned long long)s->f.c.deliveries);
        plot_ms(f, h, .5);
        plot_ms(f, h, .9);
        plot_ms(f, h, .99);
        plot_ms(f, h, 1);
        fprintf(f, " %llu", (unsigned long long)s->f.c.identified);
        if (s->sampled)
            fprintf(f, " %.1f\n", 100 * s->srv_cpu_s);
        else
            fputs(" NaN\n", f);
    }
    return fclose(f);
}

/* The last second anything happened in, so both panels share one axis. */
static size_t plot_last_second(const run_t *r)
{
    size_t last = 1;

    for (size_t i = 0; i < r->nsec; i++)
        if (r->sec[i].sampled || r->sec[i].f.c.attempts ||
            r->sec[i].f.c.deliveries)
            last = i + 1;
    return last;
}

static int plot_script(const run_t *r, const char *path, const char *data,
                       const char *png, int deliveries)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fprintf(f,
            "set terminal pngcairo size 1000,800\n"
            "set output '%s'\n"
            "set datafile missing 'NaN'\n"
            "set multiplot layout 2,1 title 'gwbench %s'\n"
            "set grid\nset key outside right\nset xlabel 'second of the run'\n"
            "set xrange [0:%zu]\n"
            "set ylabel '%s latency (ms)'\nset logscale y\n"
            "plot '%s' u 1:3 w lp t 'p50', '' u 1:4 w lp t 'p90', "
            "'' u 1:5 w lp t 'p99', '' u 1:6 w lp t 'max'\n"
            "unset logscale y\nset ylabel 'per second'\n"
            "set yrange [0:*]\nset y2range [0:*]\n"
            "set y2label 'server CPU %%'\nset y2tics\nset ytics nomirror\n"
            "plot '%s' u 1:2 w lp t 'deliveries/s', '' u 1:7 w lp "
            "t 'identified/s', '' u 1:8 axes x1y2 w l t 'server CPU %%'\n"
            "unset multiplot\n",
            png, r->scenario, plot_last_second(r) + 1,
            deliveries ? "delivery" : "connect", data, data);
    return fclose(f);
}

int plot_png(const run_t *r, const char *png)
{
    char dir[] = "/tmp/gwbench-plot.XXXXXX", data[64], script[64];
    char cmd[256];
    int deliveries = r->total.c.deliveries > 0, rc = -1;

    if (strchr(png, '\'') != NULL || mkdtemp(dir) == NULL) {
        util_warn("cannot plot to %s", png);
        return -1;
    }
    snprintf(data, sizeof(data), "%s/series.dat", dir);
    snprintf(script, sizeof(script), "%s/plot.gp", dir);
    snprintf(cmd, sizeof(cmd), "gnuplot '%s'", script);
    if (plot_data(r, data, deliveries) == 0 &&
        plot_script(r, script, data, png, deliveries) == 0)
        rc = system(cmd) == 0 ? 0 : -1;
    if (rc != 0)
        util_warn("gnuplot failed to draw %s (is gnuplot-nox installed?)", png);
    unlink(data);
    unlink(script);
    rmdir(dir);
    return rc;
}
