#include "gw/presence.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/hs.h"
#include "gw/json.h"
#include "gw/log.h"

#include <ck_hs.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The script, generated from src/presence.lua by the build. */
static const char presence_lua[] =
#include "presence.lua.h"
    ;

#define PRESENCE_HOLDER_MAX 300 /* "<instance>#<worker>" */
#define PRESENCE_ENTRY_OF(key)                                                 \
    ((presence_entry_t *)((char *)(key)-offsetof(presence_entry_t, id)))

/* A user of this instance, in the table kept while Redis is away: 7
 * bytes and the id, so that 24-byte ids still fit a 32-byte chunk. */
typedef struct presence_entry {
    uint32_t sessions; /* on all of the workers */
    uint16_t holders;  /* workers holding a session (server.workers <= 256) */
    uint8_t pending;   /* offline is pending: the grace runs */
    char id[];
} presence_entry_t;

/* What a holder reports to Redis, queued so that one script call carries
 * many, in order (a connect storm costs a call per loop turn, not one per
 * session). */
typedef enum presence_op_kind {
    PRESENCE_CHANGE, /* a user's sessions on the holder changed */
    PRESENCE_SETTLE, /* a grace is over */
    PRESENCE_PRUNE,  /* the end of the holder's census */
} presence_op_kind_t;

typedef struct presence_op {
    struct presence_op *next;
    presence_op_kind_t kind;
    int worker;   /* the holder */
    uint32_t n;   /* change: its sessions of the user now */
    int flag;     /* change: a census report; settle: begun without Redis */
    char tag[48]; /* change, prune: the census tag */
    char *user;   /* owned; NULL for a prune */
    char *guilds; /* owned: change: the union; settle: what to announce
                     if Redis cannot decide */
} presence_op_t;

/* An offline waiting out its grace. */
typedef struct presence_grace {
    struct presence_grace *next;
    uint64_t due; /* loop time it is settled at */
    int local;    /* begun while Redis was away */
    int worker;   /* the holder that owns it */
    char *user;   /* owned */
    char *guilds; /* owned: JSON array, to announce without Redis */
} presence_grace_t;

struct gw_presence {
    uv_loop_t *loop;        /* borrowed: the broker's */
    gw_redis_t *redis;      /* borrowed */
    const gw_config_t *cfg; /* borrowed */
    gw_stats_t *stats;      /* borrowed: the broker's counters */
    gw_presence_hooks_t hooks;
    gw_redis_script_t script;
    char *instance;     /* owned */
    char run[24];       /* random: this process's records, "run." */
    uint32_t census;    /* the census asked for last */
    int up;             /* Redis decides; else the table does */
    ck_hs_t table;      /* presence_entry_t ids, while !up */
    unsigned long seed; /* of the table's hash */
    presence_grace_t *graces, *last; /* in order of due */
    uv_timer_t grace_timer;          /* the first grace's due time */
    uv_timer_t beat_timer;           /* liveness, and reaping the dead */
    uv_timer_t ready_timer;          /* answers made here, next turn */
    uv_timer_t flush_timer;          /* sends the queued ops, next turn */
    presence_op_t *ops, *ops_last;   /* queued, owned */
    int batches;                     /* script calls of ops in flight */
    int stopping;                    /* answers change nothing any more */
    struct presence_call *ready;     /* those answers, owned */
    int nworkers;                    /* the instance's holders */
    int handles;                     /* open timers; p is freed at 0 */
    gw_log_limit_t log;
};

/* ---- the table of this instance's users, while Redis is away -------- */

static void presence_table_init(gw_presence_t *p)
{
    ck_hs_init(&p->table, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 1024, p->seed);
}

static void presence_table_free(gw_presence_t *p)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(&p->table, &it, &key))
        free(PRESENCE_ENTRY_OF(key));
    ck_hs_destroy(&p->table);
}

static presence_entry_t *presence_table_get(gw_presence_t *p, const char *user)
{
    void *key =
        ck_hs_get(&p->table, CK_HS_HASH(&p->table, gw_hs_hash, user), user);

    return key != NULL ? PRESENCE_ENTRY_OF(key) : NULL;
}

static presence_entry_t *presence_table_add(gw_presence_t *p, const char *user)
{
    presence_entry_t *e = presence_table_get(p, user);
    size_t len = strlen(user);

    if (e != NULL)
        return e;
    e = gw_calloc(1, sizeof(*e) + len + 1);
    memcpy(e->id, user, len + 1);
    ck_hs_put(&p->table, CK_HS_HASH(&p->table, gw_hs_hash, e->id), e->id);
    return e;
}

static void presence_table_del(gw_presence_t *p, presence_entry_t *e)
{
    ck_hs_remove(&p->table, CK_HS_HASH(&p->table, gw_hs_hash, e->id), e->id);
    free(e);
}

/* ---- announcements -------------------------------------------------- */

/* presence.update for one guild: the user's own sessions are skipped (a
 * new session knows it is online), at low priority, shed first. */
static void presence_announce_one(gw_presence_t *p, const char *user,
                                  const char *status, const char *guild)
{
    gw_buf_t o = {0};

    /* The origin first: an instance knows its own echo by its first
     * bytes (gw_event_stamp_origin's form), without parsing it. */
    gw_buf_printf(&o, "{\"origin\":");
    gw_buf_json_string(&o, p->instance);
    gw_buf_printf(&o, ",\"event\":\"presence.update\",\"guildId\":");
    gw_buf_json_string(&o, guild);
    gw_buf_printf(&o, ",\"data\":{\"userId\":");
    gw_buf_json_string(&o, user);
    gw_buf_printf(&o, ",\"status\":\"%s\"},\"excludeUserId\":", status);
    gw_buf_json_string(&o, user);
    gw_buf_printf(&o, ",\"priority\":4}");
    p->hooks.announce(p->hooks.data, o.data, o.len);
    free(o.data);
}

/* Announces status to each guild of the JSON array `guilds` (a cJSON
 * array, or an empty object, which is how Redis's cjson writes {}). */
static void presence_announce(gw_presence_t *p, const char *user,
                              const char *status, const cJSON *guilds)
{
    const cJSON *g;

    gw_stat_add(p->stats,
                status[1] == 'n' ? GW_STAT_PRESENCE_ONLINE
                                 : GW_STAT_PRESENCE_OFFLINE,
                1);
    cJSON_ArrayForEach(g, guilds)
    {
        if (cJSON_IsString(g))
            presence_announce_one(p, user, status, g->valuestring);
    }
}

/* The same, from the guilds as JSON text. */
static void presence_announce_text(gw_presence_t *p, const char *user,
                                   const char *status, const char *guilds)
{
    cJSON *doc = gw_json_parse(guilds, strlen(guilds));

    presence_announce(p, user, status, doc);
    cJSON_Delete(doc);
}

/* Decides a grace without Redis: offline unless the user is back here. */
static void presence_settle_here(gw_presence_t *p, const char *user,
                                 const char *guilds)
{
    presence_entry_t *e = presence_table_get(p, user);

    if (e != NULL && e->holders > 0)
        return;
    if (e != NULL)
        presence_table_del(p, e);
    presence_announce_text(p, user, "offline", guilds);
}

/* ---- script calls ---------------------------------------------------- */

/* One script call in flight, and what its answer needs. */
typedef struct presence_call {
    gw_presence_t *p;
    void (*done)(gw_presence_t *p, struct presence_call *c, cJSON *answer);
    int worker;
    char *user;               /* owned, or NULL */
    char *guilds;             /* owned, or NULL */
    gw_presence_answer_cb cb; /* a query's */
    void *data;
    char *ready; /* owned: an answer made here, not by Redis */
    size_t ready_len;
    struct presence_call *next; /* in gw_presence.ready */
} presence_call_t;

static void presence_call_free(presence_call_t *c)
{
    free(c->ready);
    free(c->user);
    free(c->guilds);
    free(c);
}

static void presence_holder(const gw_presence_t *p, int worker, char *out)
{
    snprintf(out, PRESENCE_HOLDER_MAX, "%s#%d", p->instance, worker);
}

/* Redis answered a call: done sees the parsed answer, or NULL when the
 * call failed (the link went down: a census will follow its return). */
static void presence_call_cb(void *data, int status, const char *value,
                             size_t len)
{
    presence_call_t *c = data;
    gw_presence_t *p = c->p;
    cJSON *answer = NULL;

    if (status == 0 && value != NULL)
        answer = gw_json_parse(value, len);
    if (answer == NULL)
        gw_stat_add(p->stats, GW_STAT_PRESENCE_FAILURES, 1);
    /* Once stopping, only a query still hears back (into nothing). */
    if (!p->stopping || c->cb != NULL)
        c->done(p, c, answer);
    cJSON_Delete(answer);
    presence_call_free(c);
}

/* Runs the script; argv[0] is the operation, the prefix goes second.
 * Returns 0, or the error with c freed and done not called. */
static int presence_call(gw_presence_t *p, presence_call_t *c, int argc,
                         const char **argv)
{
    const char **args = gw_malloc(sizeof(*args) * (size_t)(argc + 1));
    int rc;

    args[0] = argv[0];
    args[1] = p->cfg->presence_key_prefix;
    memcpy(args + 2, argv + 1, sizeof(*args) * (size_t)(argc - 1));
    c->p = p;
    rc = gw_redis_eval(p->redis, &p->script, argc + 1, args, presence_call_cb,
                       c);
    free(args);
    gw_stat_add(p->stats,
                rc == 0 ? GW_STAT_PRESENCE_COMMANDS : GW_STAT_PRESENCE_FAILURES,
                1);
    if (rc != 0)
        presence_call_free(c);
    return rc;
}

static presence_call_t *
presence_call_new(void (*done)(gw_presence_t *, presence_call_t *, cJSON *),
                  int worker, const char *user, const char *guilds)
{
    presence_call_t *c = gw_calloc(1, sizeof(*c));

    c->done = done;
    c->worker = worker;
    c->user = user ? gw_strdup(user) : NULL;
    c->guilds = guilds ? gw_strdup(guilds) : NULL;
    return c;
}

/* The users an instance's death or a census left with no session:
 * [{"u","g"}...], announced offline at once. */
static void presence_offline_list(gw_presence_t *p, const cJSON *list,
                                  gw_stat_t counter)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, list)
    {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "u");
        if (!cJSON_IsString(u))
            continue;
        gw_stat_add(p->stats, counter, 1);
        presence_announce(p, u->valuestring, "offline",
                          cJSON_GetObjectItemCaseSensitive(it, "g"));
    }
}

/* ---- queued ops, sent in batches ------------------------------------ */

#define PRESENCE_BATCH_OPS 256 /* records in one script call */
#define PRESENCE_BATCHES 4     /* calls of ops in flight; more wait, and grow */
#define PRESENCE_RETRY_MS 10   /* after Redis's queue refused a call */

static void presence_flush_cb(uv_timer_t *t);
static void presence_grace_begin(gw_presence_t *p, int worker, const char *user,
                                 const char *guilds);

static void presence_op_free(presence_op_t *op)
{
    free(op->user);
    free(op->guilds);
    free(op);
}

/* Queues an op; the queue is sent on the next loop turn, so that what one
 * turn brings goes in one call. The new op is p->ops_last, for the caller
 * to fill in. */
static void presence_enqueue(gw_presence_t *p, presence_op_kind_t kind,
                             int worker, const char *user, const char *guilds)
{
    presence_op_t *op = gw_calloc(1, sizeof(*op));

    op->kind = kind;
    op->worker = worker;
    op->user = user ? gw_strdup(user) : NULL;
    op->guilds = guilds ? gw_strdup(guilds) : NULL;
    if (p->ops_last != NULL)
        p->ops_last->next = op;
    else
        p->ops = op;
    p->ops_last = op;
    if (!uv_is_active((uv_handle_t *)&p->flush_timer))
        uv_timer_start(&p->flush_timer, presence_flush_cb, 0, 0);
}

/* Redis said what one op did; answer is NULL when the call failed. */
static void presence_op_done(gw_presence_t *p, const presence_op_t *op,
                             const cJSON *answer)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(answer, "t");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(answer, "g");
    const char *what = cJSON_IsString(t) ? t->valuestring : "";

    if (answer == NULL && op->kind == PRESENCE_SETTLE)
        presence_settle_here(p, op->user, op->guilds);
    else if (strcmp(what, "online") == 0)
        presence_announce(p, op->user, "online", g);
    else if (strcmp(what, "grace") == 0)
        presence_grace_begin(p, op->worker, op->user, op->guilds);
    else if (strcmp(what, "offline") == 0 && g != NULL)
        presence_announce(p, op->user, "offline", g);
    else if (strcmp(what, "offline") == 0)
        presence_announce_text(p, op->user, "offline", op->guilds);
    else if (strcmp(what, "gone") == 0)
        presence_offline_list(p, cJSON_GetObjectItemCaseSensitive(answer, "l"),
                              GW_STAT_PRESENCE_OFFLINE);
}

/* Ends a batch: each op with its answer, in order. */
static void presence_batch_done(gw_presence_t *p, presence_op_t *ops,
                                const cJSON *answers)
{
    const cJSON *a = cJSON_IsArray(answers) ? answers->child : NULL;

    while (ops != NULL) {
        presence_op_t *next = ops->next;
        if (a != NULL && ops->kind == PRESENCE_CHANGE)
            gw_stat_add(p->stats, GW_STAT_PRESENCE_CHANGES, 1);
        if (!p->stopping)
            presence_op_done(p, ops, a);
        if (a != NULL)
            a = a->next;
        presence_op_free(ops);
        ops = next;
    }
}

/* A batch in flight. */
typedef struct presence_batch {
    gw_presence_t *p;
    presence_op_t *ops; /* owned */
} presence_batch_t;

static void presence_flush(gw_presence_t *p);

static void presence_batch_cb(void *data, int status, const char *value,
                              size_t len)
{
    presence_batch_t *b = data;
    gw_presence_t *p = b->p;
    cJSON *answers = NULL;

    if (status == 0 && value != NULL)
        answers = gw_json_parse(value, len);
    if (!cJSON_IsArray(answers))
        gw_stat_add(p->stats, GW_STAT_PRESENCE_FAILURES, 1);
    presence_batch_done(p, b->ops, answers);
    cJSON_Delete(answers);
    free(b);
    p->batches--;
    if (!p->stopping)
        presence_flush(p);
}

/* The words of op, after "batch" and the prefix; holder and n are its
 * scratch. Returns how many. */
static int presence_op_words(const gw_presence_t *p, const presence_op_t *op,
                             const char **w, char *holder, char *n)
{
    presence_holder(p, op->worker, holder);
    w[1] = holder;
    switch (op->kind) {
    case PRESENCE_CHANGE:
        snprintf(n, 16, "%" PRIu32, op->n);
        w[0] = "change";
        w[2] = op->user;
        w[3] = n;
        w[4] = op->guilds;
        w[5] = op->tag;
        w[6] = op->flag ? "1" : "0";
        return 7;
    case PRESENCE_SETTLE:
        w[0] = "settle";
        w[2] = op->user;
        w[3] = op->flag ? "1" : "0";
        return 4;
    case PRESENCE_PRUNE:
        w[0] = "prune";
        w[2] = p->run;
        w[3] = op->tag;
        return 4;
    }
    return 0;
}

/* Sends the first k queued ops in one call: 0, or the error of the
 * call with nothing sent. */
static int presence_send(gw_presence_t *p, presence_batch_t *b, int k)
{
    const char **argv = gw_malloc(sizeof(*argv) * (size_t)(7 * k + 2));
    char *scratch = gw_malloc((size_t)k * (PRESENCE_HOLDER_MAX + 16));
    int argc = 2, i = 0, rc;

    argv[0] = "batch";
    argv[1] = p->cfg->presence_key_prefix;
    for (presence_op_t *op = b->ops; i < k; op = op->next, i++) {
        char *h = scratch + (size_t)i * (PRESENCE_HOLDER_MAX + 16);
        argc +=
            presence_op_words(p, op, argv + argc, h, h + PRESENCE_HOLDER_MAX);
    }
    rc = gw_redis_eval(p->redis, &p->script, argc, argv, presence_batch_cb, b);
    free(argv);
    free(scratch);
    return rc;
}

/* Sends what is queued, a batch at a time, while few are in flight; the
 * rest waits for an answer, and makes the next batch bigger. */
static void presence_flush(gw_presence_t *p)
{
    while (p->ops != NULL && p->batches < PRESENCE_BATCHES) {
        presence_batch_t *b = gw_malloc(sizeof(*b));
        presence_op_t *last = p->ops;
        int k = 1, rc;

        while (last->next != NULL && k < PRESENCE_BATCH_OPS) {
            last = last->next;
            k++;
        }
        *b = (presence_batch_t){p, p->ops};
        rc = presence_send(p, b, k);
        if (rc == GW_EFULL) {
            free(b);
            uv_timer_start(&p->flush_timer, presence_flush_cb,
                           PRESENCE_RETRY_MS, 0);
            return;
        }
        p->ops = last->next;
        if (p->ops == NULL)
            p->ops_last = NULL;
        last->next = NULL;
        gw_stat_add(
            p->stats,
            rc == 0 ? GW_STAT_PRESENCE_COMMANDS : GW_STAT_PRESENCE_FAILURES, 1);
        if (rc == 0) {
            p->batches++;
            continue;
        }
        /* Redis went away: a census will register everything again. */
        presence_batch_done(p, b->ops, NULL);
        free(b);
    }
}

static void presence_flush_cb(uv_timer_t *t)
{
    presence_flush(t->data);
}

/* ---- the offline grace ---------------------------------------------- */

static void presence_grace_free(presence_grace_t *g)
{
    free(g->user);
    free(g->guilds);
    free(g);
}

static void presence_grace_cb(uv_timer_t *t);

/* Starts the grace of a user's offline. The grace is the same for every
 * user, so the list stays in order of due time by appending. */
static void presence_grace_begin(gw_presence_t *p, int worker, const char *user,
                                 const char *guilds)
{
    presence_grace_t *g = gw_calloc(1, sizeof(*g));

    g->due = uv_now(p->loop) + p->cfg->presence_offline_grace_ms;
    g->local = !p->up;
    g->worker = worker;
    g->user = gw_strdup(user);
    g->guilds = gw_strdup(guilds);
    if (p->last != NULL)
        p->last->next = g;
    else
        p->graces = g;
    p->last = g;
    if (p->graces == g)
        uv_timer_start(&p->grace_timer, presence_grace_cb,
                       p->cfg->presence_offline_grace_ms, 0);
}

static void presence_enqueue(gw_presence_t *p, presence_op_kind_t kind,
                             int worker, const char *user, const char *guilds);

/* A grace is over: Redis decides whether the user is still gone anywhere,
 * or this instance does while Redis is away. */
static void presence_settle(gw_presence_t *p, presence_grace_t *g)
{
    if (!p->up) {
        presence_settle_here(p, g->user, g->guilds);
        return;
    }
    presence_enqueue(p, PRESENCE_SETTLE, g->worker, g->user, g->guilds);
    p->ops_last->flag = g->local;
}

static void presence_grace_cb(uv_timer_t *t)
{
    gw_presence_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    presence_grace_t *g;

    while ((g = p->graces) != NULL && g->due <= now) {
        p->graces = g->next;
        if (p->graces == NULL)
            p->last = NULL;
        presence_settle(p, g);
        presence_grace_free(g);
    }
    if (p->graces != NULL)
        uv_timer_start(t, presence_grace_cb, p->graces->due - now, 0);
}

/* ---- reports ---------------------------------------------------------- */

/* The record's census tag: this run's, numbered. */
static void presence_census_tag(const gw_presence_t *p, uint32_t census,
                                char *out, size_t len)
{
    snprintf(out, len, "%s%" PRIu32, p->run, census);
}

/* Sets the user's count on the reporting holder in Redis (absolute, so a
 * census and a lost reply both end right). */
static void presence_report_redis(gw_presence_t *p,
                                  const gw_presence_report_t *r)
{
    presence_enqueue(p, PRESENCE_CHANGE, r->worker, r->user, r->guilds);
    p->ops_last->n = r->after;
    p->ops_last->flag = r->counted;
    presence_census_tag(p, r->census, p->ops_last->tag,
                        sizeof(p->ops_last->tag));
}

/* The end of a worker's census: what it did not report is gone. */
static void presence_prune(gw_presence_t *p, const gw_presence_report_t *r)
{
    presence_enqueue(p, PRESENCE_PRUNE, r->worker, NULL, NULL);
    presence_census_tag(p, r->census, p->ops_last->tag,
                        sizeof(p->ops_last->tag));
}

/* Without Redis: the instance's own count decides. A census report only
 * rebuilds the table; a change that makes the user's first holder here
 * announces online (unless an offline was pending: a reconnect inside the
 * grace), one that removes the last begins the grace. */
static void presence_report_here(gw_presence_t *p,
                                 const gw_presence_report_t *r)
{
    presence_entry_t *e = presence_table_add(p, r->user);
    int came = r->before == 0 && r->after > 0;
    int left = r->before > 0 && r->after == 0;

    e->sessions += r->after - (r->counted ? 0 : r->before);
    if (r->counted) {
        e->holders++;
        return;
    }
    if (came && e->holders++ == 0) {
        if (e->pending)
            e->pending = 0;
        else
            presence_announce_text(p, r->user, "online", r->guilds);
    } else if (left && e->holders > 0 && --e->holders == 0) {
        e->pending = 1;
        presence_grace_begin(p, r->worker, r->user, r->guilds);
    }
    if (e->holders == 0 && !e->pending)
        presence_table_del(p, e);
}

void gw_presence_report(gw_presence_t *p, const gw_presence_report_t *r)
{
    /* A report from before the census in progress is what the census
     * reports again: the table counts only the census's. */
    if (!p->up && r->census != p->census)
        return;
    if (r->user == NULL) {
        if (p->up)
            presence_prune(p, r);
        return;
    }
    if (p->up)
        presence_report_redis(p, r);
    else
        presence_report_here(p, r);
}

/* ---- the link, censuses and liveness --------------------------------- */

static void presence_census(gw_presence_t *p)
{
    p->census++;
    gw_stat_add(p->stats, GW_STAT_PRESENCE_CENSUSES, 1);
    p->hooks.census(p->hooks.data, p->census);
}

static void presence_reaped(gw_presence_t *p, presence_call_t *c, cJSON *answer)
{
    (void)c;
    presence_offline_list(p, answer, GW_STAT_PRESENCE_REAPED);
}

/* Pushes this instance's liveness half a TTL ahead and reaps the holders
 * of instances that let theirs lapse; every quarter TTL, so one beat may
 * be late, and a dead instance is reaped within 3/4 of the TTL. */
static void presence_beat(gw_presence_t *p)
{
    char ttl[16],
        *holders = gw_malloc((size_t)p->nworkers * PRESENCE_HOLDER_MAX);
    const char **argv = gw_malloc(sizeof(*argv) * (size_t)(p->nworkers + 2));

    snprintf(ttl, sizeof(ttl), "%" PRIu32,
             p->cfg->presence_instance_ttl_ms / 2);
    argv[0] = "beat";
    argv[1] = ttl;
    for (int i = 0; i < p->nworkers; i++) {
        presence_holder(p, i, holders + i * PRESENCE_HOLDER_MAX);
        argv[i + 2] = holders + i * PRESENCE_HOLDER_MAX;
    }
    presence_call(p, presence_call_new(presence_reaped, 0, NULL, NULL),
                  p->nworkers + 2, argv);
    free(argv);
    free(holders);
}

static void presence_beat_cb(uv_timer_t *t)
{
    presence_beat(t->data);
}

/*
 * Redis came or went. Coming, it takes over at once: the liveness goes
 * first, then every worker reports what it holds, which registers it
 * again (users the others reaped meanwhile come back online). Going, the
 * instance starts a table of its own users from a census and decides
 * alone until Redis is back.
 */
void gw_presence_link(gw_presence_t *p, gw_link_state_t state)
{
    uint64_t beat = p->cfg->presence_instance_ttl_ms / 4;

    if ((state == GW_LINK_UP) == p->up)
        return;
    p->up = state == GW_LINK_UP;
    if (p->up) {
        presence_table_free(p);
        uv_timer_start(&p->beat_timer, presence_beat_cb, 0, beat);
    } else {
        uv_timer_stop(&p->beat_timer);
        presence_table_init(p);
    }
    presence_census(p);
}

void gw_presence_resync(gw_presence_t *p)
{
    if (!p->up) {
        presence_table_free(p);
        presence_table_init(p);
    }
    presence_census(p);
}

/* ---- queries ------------------------------------------------------- */

/* Answers the queries the instance answered alone, on the loop turn after
 * they were asked, as the callback contract promises. */
static void presence_ready_cb(uv_timer_t *t)
{
    gw_presence_t *p = t->data;
    presence_call_t *c;

    while ((c = p->ready) != NULL) {
        p->ready = c->next;
        c->cb(c->data, 0, c->ready, c->ready_len);
        c->ready = NULL;
        presence_call_free(c);
    }
}

static void presence_answer(presence_call_t *c, int status, gw_buf_t *o)
{
    size_t len = 0;
    char *json = o != NULL ? gw_buf_steal(o, &len) : NULL;

    c->cb(c->data, status, json, len);
}

/* Writes a JSON array of the strings in list (a cJSON array, or the
 * empty object Redis's cjson writes for an empty one). */
static void presence_ids(gw_buf_t *o, const cJSON *list)
{
    const cJSON *it;
    const char *sep = "";

    gw_buf_printf(o, "[");
    cJSON_ArrayForEach(it, list)
    {
        if (!cJSON_IsString(it))
            continue;
        gw_buf_printf(o, "%s", sep);
        gw_buf_json_string(o, it->valuestring);
        sep = ",";
    }
    gw_buf_printf(o, "]");
}

static void presence_users_done(gw_presence_t *p, presence_call_t *c,
                                cJSON *answer)
{
    const cJSON *it;
    const char *sep = "";
    gw_buf_t o = {0};

    (void)p;
    if (answer == NULL) {
        presence_answer(c, GW_EIO, NULL);
        return;
    }
    gw_buf_printf(&o, "{\"users\":[");
    cJSON_ArrayForEach(it, answer)
    {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "userId");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "status");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "sessions");
        if (!cJSON_IsString(u) || !cJSON_IsString(st) || !cJSON_IsNumber(n))
            continue;
        gw_buf_printf(&o, "%s{\"userId\":", sep);
        gw_buf_json_string(&o, u->valuestring);
        gw_buf_printf(&o, ",\"status\":\"%s\",\"sessions\":%.0f}",
                      strcmp(st->valuestring, "online") == 0 ? "online"
                                                             : "offline",
                      n->valuedouble);
        sep = ",";
    }
    gw_buf_printf(&o, "],\"scope\":\"cluster\"}\n");
    presence_answer(c, 0, &o);
}

/* The instance's own answer, from its table, while Redis is away. */
static void presence_users_here(gw_presence_t *p, const char *const *users,
                                int n, presence_call_t *c)
{
    gw_buf_t o = {0};

    gw_buf_printf(&o, "{\"users\":[");
    for (int i = 0; i < n; i++) {
        presence_entry_t *e = presence_table_get(p, users[i]);
        int online = e != NULL && (e->holders > 0 || e->pending);
        gw_buf_printf(&o, "%s{\"userId\":", i > 0 ? "," : "");
        gw_buf_json_string(&o, users[i]);
        gw_buf_printf(&o, ",\"status\":\"%s\",\"sessions\":%" PRIu32 "}",
                      online ? "online" : "offline", e ? e->sessions : 0);
    }
    gw_buf_printf(&o, "],\"scope\":\"instance\"}\n");
    c->ready = gw_buf_steal(&o, &c->ready_len);
    c->next = p->ready;
    p->ready = c;
    uv_timer_start(&p->ready_timer, presence_ready_cb, 0, 0);
}

int gw_presence_users(gw_presence_t *p, const char *const *users, int n,
                      gw_presence_answer_cb cb, void *data)
{
    const char **argv;
    presence_call_t *c;
    int rc;

    c = presence_call_new(presence_users_done, 0, NULL, NULL);
    c->cb = cb;
    c->data = data;
    if (!p->up) {
        presence_users_here(p, users, n, c);
        return 0;
    }
    argv = gw_malloc(sizeof(*argv) * (size_t)(n + 1));
    argv[0] = "users";
    memcpy(argv + 1, users, sizeof(*argv) * (size_t)n);
    rc = presence_call(p, c, n + 1, argv);
    free(argv);
    return rc;
}

static void presence_guild_done(gw_presence_t *p, presence_call_t *c,
                                cJSON *answer)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(answer, "online");
    gw_buf_t o = {0};

    (void)p;
    if (!cJSON_IsNumber(n)) {
        presence_answer(c, GW_EIO, NULL);
        return;
    }
    gw_buf_printf(&o, "{\"guildId\":");
    gw_buf_json_string(&o, c->user);
    gw_buf_printf(&o, ",\"online\":%.0f,\"userIds\":", n->valuedouble);
    presence_ids(&o, cJSON_GetObjectItemCaseSensitive(answer, "userIds"));
    gw_buf_printf(&o, "}\n");
    presence_answer(c, 0, &o);
}

int gw_presence_guild(gw_presence_t *p, const char *guild,
                      gw_presence_answer_cb cb, void *data)
{
    char limit[16];
    const char *argv[3] = {"guild", guild, limit};
    presence_call_t *c;

    if (!p->up)
        return GW_ECLOSED;
    snprintf(limit, sizeof(limit), "%" PRIu32, p->cfg->presence_guild_limit);
    /* The guild's id rides in `user`, for the answer. */
    c = presence_call_new(presence_guild_done, 0, guild, NULL);
    c->cb = cb;
    c->data = data;
    return presence_call(p, c, 3, argv);
}

/* ---- life ------------------------------------------------------------ */

gw_presence_t *gw_presence_start(uv_loop_t *loop, gw_redis_t *redis,
                                 const gw_config_t *cfg, const char *instance,
                                 int nworkers, gw_stats_t *stats,
                                 const gw_presence_hooks_t *hooks)
{
    gw_presence_t *p = gw_calloc(1, sizeof(*p));
    uint64_t run;

    p->loop = loop;
    p->redis = redis;
    p->cfg = cfg;
    p->stats = stats;
    p->hooks = *hooks;
    p->nworkers = nworkers;
    p->instance = gw_strdup(instance);
    gw_redis_script_init(&p->script, presence_lua);
    if (getrandom(&run, sizeof(run), 0) != sizeof(run))
        run = uv_hrtime() ^ (uintptr_t)p;
    snprintf(p->run, sizeof(p->run), "%016" PRIx64 ".", run);
    p->seed = (unsigned long)run;
    presence_table_init(p);
    uv_timer_init(loop, &p->grace_timer);
    uv_timer_init(loop, &p->beat_timer);
    uv_timer_init(loop, &p->ready_timer);
    uv_timer_init(loop, &p->flush_timer);
    p->grace_timer.data = p->beat_timer.data = p;
    p->ready_timer.data = p->flush_timer.data = p;
    p->handles = 4;
    return p;
}

static void presence_close_cb(uv_handle_t *h)
{
    gw_presence_t *p = h->data;
    presence_grace_t *g;

    if (--p->handles > 0)
        return;
    while ((g = p->graces) != NULL) {
        p->graces = g->next;
        presence_grace_free(g);
    }
    presence_batch_done(p, p->ops, NULL);
    if (!p->up)
        presence_table_free(p);
    free(p->instance);
    free(p);
}

void gw_presence_stop(gw_presence_t *p)
{
    p->stopping = 1;
    /* Queries answered here are answered before the end, as promised. */
    presence_ready_cb(&p->ready_timer);
    uv_close((uv_handle_t *)&p->grace_timer, presence_close_cb);
    uv_close((uv_handle_t *)&p->beat_timer, presence_close_cb);
    uv_close((uv_handle_t *)&p->ready_timer, presence_close_cb);
    uv_close((uv_handle_t *)&p->flush_timer, presence_close_cb);
}
