#include "summary.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The figures worth a glance, per scenario: a label and a path of keys
 * separated by dots under "results". */
typedef struct summary_field {
    const char *label;
    const char *path;
} summary_field_t;

typedef struct summary_scenario {
    const char *name;
    summary_field_t fields[16]; /* ended by a NULL label */
} summary_scenario_t;

static const summary_scenario_t summary_table[] = {
    {"connect",
     {{"sessions", "identified"},
      {"per_s", "identified_per_s"},
      {"tcp_fail", "failures.tcp"},
      {"tls_fail", "failures.tls"},
      {"tls/s", "tls.handshakes_per_s"},
      {"resumed", "resumed_storm.tls.resumed"},
      {"resumed/s", "resumed_storm.tls.handshakes_per_s"},
      {"p50_ms", "connect_to_identified.p50_ms"},
      {"p99_ms", "connect_to_identified.p99_ms"},
      {"srv_cpu_s", "server_cpu_s"},
      {"gen_cpu_s", "gwbench_cpu_s"},
      {"steal_s", "machine_steal_s"}}},
    {"idle",
     {{"sessions", "identified"},
      {"rss_kb", "rss_connected_kb"},
      {"B/session", "rss_per_session_bytes"},
      {"hold_srv_cpu%", "hold.server_cpu_pct"},
      {"closed", "hold.counters.closed_by_server"}}},
    {"fanout",
     {{"instances", "instances"},
      {"brk_us/ev", "broker_us_per_event"},
      {"redis_us/ev", "redis_us_per_event"},
      {"deliv/s", "deliveries_per_s"},
      {"share", "delivered_share"},
      {"p50_ms", "latency.p50_ms"},
      {"p99_ms", "latency.p99_ms"},
      {"p999_ms", "latency.p999_ms"},
      {"max_ms", "latency.max_ms"},
      {"deliv/srv_cpu_s", "deliveries_per_server_cpu_s"},
      {"gen_cpu%", "gwbench_cpu_pct"},
      {"steal_s", "machine_steal_s"}}},
    {"typing",
     {{"sent", "typing_sent"},
      {"limited", "rate_limited"},
      {"relays", "relays_received"},
      {"share", "delivered_share"},
      {"p99_ms", "latency.p99_ms"},
      {"relays/srv_cpu_s", "relays_per_server_cpu_s"}}},
    {"relay",
     {{"sent", "sent"},
      {"answered", "answered"},
      {"lost", "lost"},
      {"unavail", "errors.unavailable"},
      {"overload", "errors.overloaded"},
      {"limited", "errors.rate_limited"},
      {"p50_ms", "latency.p50_ms"},
      {"p99_ms", "latency.p99_ms"},
      {"p999_ms", "latency.p999_ms"},
      {"max_ms", "latency.max_ms"},
      {"relays/srv_cpu_s", "relays_per_server_cpu_s"}}},
    {"reconnect",
     {{"dropped", "dropped"},
      {"reconnected", "reconnected"},
      {"per_s", "reconnects_per_s"},
      {"p50_ms", "drop_to_identified.p50_ms"},
      {"p99_ms", "drop_to_identified.p99_ms"},
      {"srv_cpu%", "server_cpu_pct"}}},
    {"presence",
     {{"sessions", "sessions"},
      {"instances", "instances"},
      {"settle_s", "connect.settle_s"},
      {"storm_identify_s", "storm.identify_s"},
      {"storm_settle_s", "storm.settle_s"},
      {"offline", "storm.offline_received"},
      {"online", "storm.online_received"},
      {"cmd/change", "storm.redis_to_settle.commands_per_change"},
      {"cmd/change_grace", "storm.redis_with_grace.commands_per_change"}}},
    {"resume",
     {{"cuts", "cuts"},
      {"resumed", "resumed"},
      {"invalid", "invalid_session"},
      {"lost", "lost"},
      {"dup", "duplicated"},
      {"gaps", "seq_gaps"},
      {"p50_ms", "resume_latency.p50_ms"},
      {"p99_ms", "resume_latency.p99_ms"},
      {"p999_ms", "resume_latency.p999_ms"},
      {"srv_cpu%", "server_cpu_pct"},
      {"other_cpu_s", "machine_other_cpu_s"}}},
    {"drain",
     {{"moved", "moved"},
      {"resumed", "resumed"},
      {"invalid", "invalid_session"},
      {"lost", "lost"},
      {"dup", "duplicated"},
      {"ooo", "out_of_order"},
      {"gaps", "seq_gaps"},
      {"all_resumed_s", "all_resumed_s"},
      {"exit_s", "drained_exit_s"},
      {"p50_ms", "resume_latency.p50_ms"},
      {"p99_ms", "resume_latency.p99_ms"},
      {"max_ms", "resume_latency.max_ms"},
      {"restored", "survivor.handoffs_restored"},
      {"overlap", "survivor.handoff_overlap"},
      {"other_cpu_s", "machine_other_cpu_s"}}},
    {"park",
     {{"fill", "fill"},
      {"B/parked", "bytes_per_parked_session"},
      {"B/round1", "first_round_bytes_per_session"},
      {"overflows", "resume_overflows"}}},
};

static const cJSON *summary_get(const cJSON *obj, const char *path)
{
    char key[64];

    while (obj != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");

        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        obj = cJSON_GetObjectItemCaseSensitive(obj, key);
        path += n + (path[n] == '.');
    }
    return obj;
}

static void summary_line(const char *file, const cJSON *root)
{
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "scenario");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "results");
    const char *name = cJSON_IsString(sc) ? sc->valuestring : "?";

    printf("%-10s %-4s", name,
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok")) ? "ok"
                                                                      : "FAIL");
    for (size_t i = 0; i < sizeof(summary_table) / sizeof(summary_table[0]);
         i++) {
        if (strcmp(summary_table[i].name, name) != 0)
            continue;
        for (const summary_field_t *f = summary_table[i].fields;
             f->label != NULL; f++) {
            const cJSON *v = summary_get(res, f->path);

            if (cJSON_IsNumber(v))
                printf("  %s=%.6g", f->label, v->valuedouble);
        }
    }
    printf("  (%s)\n", file);
}

int summary_main(int argc, char **argv)
{
    int rc = 0;

    for (int i = 0; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        char *text = NULL;
        size_t cap = 0;
        cJSON *root = NULL;

        if (f != NULL && getdelim(&text, &cap, '\0', f) > 0)
            root = cJSON_Parse(text);
        if (f != NULL)
            fclose(f);
        free(text);
        if (root == NULL) {
            printf("%s: not a gwbench report\n", argv[i]);
            rc = 1;
            continue;
        }
        summary_line(argv[i], root);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok")))
            rc = 1;
        cJSON_Delete(root);
    }
    return rc;
}
