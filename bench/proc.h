/*
 * What /proc says about a process: CPU time (utime + stime of
 * /proc/PID/stat) and resident memory (VmRSS of /proc/PID/status, which is
 * user-space memory only: socket buffers are the kernel's and not in it).
 */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

typedef struct proc_sample {
    double user_s; /* utime, seconds */
    double sys_s;  /* stime, seconds */
    uint64_t rss_kb;
} proc_sample_t;

/* Reads pid alone. Returns 0, or -1 when it is gone or unreadable. */
int proc_read(pid_t pid, proc_sample_t *s);

/* Reads pid's CPU time alone (rss_kb 0): also of a process that exited
 * and is not reaped yet, which has no memory left to read. Returns 0, or
 * -1 when it is gone or unreadable. */
int proc_read_cpu(pid_t pid, proc_sample_t *s);

/*
 * Reads pid plus its descendants, three levels down (a start script, the
 * server it runs and the workers that forks, as with nginx, count as their
 * sum). Returns 0, or -1 when pid itself is unreadable.
 */
int proc_read_tree(pid_t pid, proc_sample_t *s);

/* CPU time the hypervisor took from this machine's CPUs (the steal column
 * of /proc/stat), in seconds summed over CPUs; -1 when unknown. On a
 * virtual machine it explains noise that neither process caused. */
double proc_steal_s(void);

/* CPU time all of the machine's CPUs spent busy (user, nice, system, irq
 * and softirq of /proc/stat), in seconds summed over CPUs; -1 when
 * unknown. Less the server's and the generator's, what else ran meanwhile
 * (a shared machine's builds and tests, a private Redis). */
double proc_busy_s(void);

/*
 * The CPU time of pid's threads whose name (their comm) is name, or of
 * all of them when name is NULL, in seconds: the run time schedstat gives
 * in nanoseconds (stat's utime and stime come in clock ticks, 10 ms, too
 * coarse for one thread's share of a run). Threads that exited are not
 * counted. Returns how many threads were counted, or -1 when pid's tasks
 * cannot be read.
 */
int proc_threads_cpu(pid_t pid, const char *name, double *cpu_s);

/* The run time (its first field, nanoseconds) of a schedstat line.
 * Returns 0, or -1 when it does not begin with a number. */
int proc_schedstat_ns(const char *text, uint64_t *ns);

/* Adds b into a. */
void proc_add(proc_sample_t *a, const proc_sample_t *b);

/* CPU seconds (user + system) spent between two samples. */
double proc_cpu_between(const proc_sample_t *a, const proc_sample_t *b);

#endif
