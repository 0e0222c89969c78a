#include "proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime and stime, in clock ticks, from /proc/PID/stat. The command name
 * (field 2) may hold spaces and parentheses, so fields are counted from the
 * last ')'. */
static int proc_read_stat(pid_t pid, proc_sample_t *s)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    double tick = (double)sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime, that is fields 3..15. */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    s->user_s = (double)ut / tick;
    s->sys_s = (double)st / tick;
    return 0;
}

static int proc_read_rss(pid_t pid, proc_sample_t *s)
{
    char path[64], line[256];
    unsigned long long kb;
    int rc = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
            s->rss_kb = kb;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int proc_read(pid_t pid, proc_sample_t *s)
{
    memset(s, 0, sizeof(*s));
    if (proc_read_stat(pid, s) != 0 || proc_read_rss(pid, s) != 0)
        return -1;
    return 0;
}

int proc_read_cpu(pid_t pid, proc_sample_t *s)
{
    memset(s, 0, sizeof(*s));
    return proc_read_stat(pid, s);
}

/* Adds the descendants of pid, depth levels down, into s. */
static void proc_add_children(pid_t pid, proc_sample_t *s, int depth)
{
    char path[96], buf[4096], *p, *end;
    proc_sample_t child;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
             (int)pid);
    if (depth == 0 || (f = fopen(path, "r")) == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (p = buf;; p = end) {
        long c = strtol(p, &end, 10);

        if (end == p)
            break;
        if (proc_read((pid_t)c, &child) == 0)
            proc_add(s, &child);
        proc_add_children((pid_t)c, s, depth - 1);
    }
}

int proc_read_tree(pid_t pid, proc_sample_t *s)
{
    if (proc_read(pid, s) != 0)
        return -1;
    /* A start script, its server, the server's workers. */
    proc_add_children(pid, s, 3);
    return 0;
}

/* The first line of /proc/stat: cpu user nice system idle iowait irq
 * softirq steal, in ticks. Returns 0, or -1. */
static int proc_stat_cpu(unsigned long long v[8])
{
    FILE *f = fopen("/proc/stat", "r");
    int n = 0;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    return n == 8 ? 0 : -1;
}

double proc_steal_s(void)
{
    unsigned long long v[8];

    if (proc_stat_cpu(v) != 0)
        return -1;
    return (double)v[7] / (double)sysconf(_SC_CLK_TCK);
}

double proc_busy_s(void)
{
    unsigned long long v[8];

    if (proc_stat_cpu(v) != 0)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6]) /
           (double)sysconf(_SC_CLK_TCK);
}

void proc_add(proc_sample_t *a, const proc_sample_t *b)
{
    a->user_s += b->user_s;
    a->sys_s += b->sys_s;
    a->rss_kb += b->rss_kb;
}

double proc_cpu_between(const proc_sample_t *a, const proc_sample_t *b)
{
    return (b->user_s + b->sys_s) - (a->user_s + a->sys_s);
}

int proc_schedstat_ns(const char *text, uint64_t *ns)
{
    char *end;
    unsigned long long v;

    while (*text == ' ')
        text++;
    if (*text < '0' || *text > '9')
        return -1;
    v = strtoull(text, &end, 10);
    if (*end != ' ' && *end != '\n' && *end != '\0')
        return -1;
    *ns = v;
    return 0;
}

/* The first line of /proc/PID/task/TID/<file> into buf; 0 or -1. */
static int proc_task_line(pid_t pid, const char *tid, const char *file,
                          char *buf, size_t cap)
{
    char path[96];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)pid, tid, file);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    rc = fgets(buf, (int)cap, f) != NULL ? 0 : -1;
    fclose(f);
    return rc;
}

int proc_threads_cpu(pid_t pid, const char *name, double *cpu_s)
{
    char path[64], line[128];
    struct dirent *e;
    uint64_t ns, sum = 0;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (name != NULL &&
            (proc_task_line(pid, e->d_name, "comm", line, sizeof(line)) != 0 ||
             strncmp(line, name, strlen(name)) != 0 ||
             (line[strlen(name)] != '\n' && line[strlen(name)] != '\0')))
            continue;
        if (proc_task_line(pid, e->d_name, "schedstat", line, sizeof(line)) !=
                0 ||
            proc_schedstat_ns(line, &ns) != 0)
            continue;
        sum += ns;
        n++;
    }
    closedir(d);
    *cpu_s = (double)sum / 1e9;
    return n;
}
