/*
 * The subscription window (include/gw/subwait.h). Pending targets are a
 * ck_hs set of their keys (the kind's letter, then the id), each entry
 * with the answers that wait for it; each held answer knows the entries
 * it waits for, so that it leaves them when it expires or its session
 * goes, and sits in a list in order of its due time (one wait for all,
 * so appending keeps the order). Answers that became due are gathered
 * before any is told: the owner may close a session, and so cancel, from
 * its callback.
 */
#include "gw/subwait.h"

#include "gw/alloc.h"
#include "gw/hs.h"

#include <ck_hs.h>
#include <stdlib.h>
#include <string.h>

#define SUBWAIT_ENTRY_OF(p)                                                    \
    ((subwait_entry_t *)((char *)(p)-offsetof(subwait_entry_t, key)))

typedef struct subwait_wait subwait_wait_t;

typedef struct subwait_entry {
    subwait_wait_t **waits; /* owned array of borrowed answers */
    size_t nwaits, cap;
    uint32_t asked; /* the worker's +1s the broker has not answered */
    uint8_t gone;   /* no session here holds it any more */
    char key[];     /* kind letter, then the id */
} subwait_entry_t;

struct subwait_wait {
    subwait_wait_t *prev, *next; /* in the due list, or next in ready */
    uint64_t due;
    subwait_entry_t **on; /* owned array: the entries it waits for, NULL
                             once one let it go */
    size_t non;
    size_t left; /* entries in `on` still pending */
    gw_subwait_answer_t a;
    char *text[GW_SUBWAIT_MSGS]; /* owned copies, a's strings */
};

struct gw_subwait {
    ck_hs_t table;      /* of entry keys */
    unsigned long seed; /* of the table's hash: clients choose ids */
    uint64_t wait_ms;
    gw_subwait_cb cb;
    void *data;
    subwait_wait_t *first, *last; /* held, in order of due */
    subwait_wait_t *ready;        /* due, not yet told */
    size_t held;
};

static const char subwait_letter[GW_INTEREST_KINDS] = {'g', 'u', 's'};

gw_subwait_t *gw_subwait_new(uint64_t wait_ms, gw_subwait_cb cb, void *data)
{
    gw_subwait_t *sw = gw_calloc(1, sizeof(*sw));

    sw->wait_ms = wait_ms;
    sw->cb = cb;
    sw->data = data;
    sw->seed = (unsigned long)random() ^ (unsigned long)(uintptr_t)sw;
    ck_hs_init(&sw->table, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, gw_hs_hash,
               gw_hs_equal, &gw_ck_allocator, 64, sw->seed);
    return sw;
}

static void subwait_wait_free(subwait_wait_t *w)
{
    for (int i = 0; i < GW_SUBWAIT_MSGS; i++)
        free(w->text[i]);
    free(w->on);
    free(w);
}

static void subwait_entry_free(subwait_entry_t *e)
{
    free(e->waits);
    free(e);
}

void gw_subwait_free(gw_subwait_t *sw)
{
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *key;

    while (ck_hs_next(&sw->table, &it, &key))
        subwait_entry_free(SUBWAIT_ENTRY_OF(key));
    ck_hs_destroy(&sw->table);
    while (sw->first != NULL) {
        subwait_wait_t *w = sw->first;
        sw->first = w->next;
        subwait_wait_free(w);
    }
    free(sw);
}

/* The key of a target, in buf when it fits, else on the heap. */
static char *subwait_key(char *buf, size_t size, gw_interest_kind_t kind,
                         const char *id)
{
    size_t len = strlen(id);
    char *key = len + 2 <= size ? buf : gw_malloc(len + 2);

    key[0] = subwait_letter[kind];
    memcpy(key + 1, id, len + 1);
    return key;
}

static subwait_entry_t *subwait_get(const gw_subwait_t *sw,
                                    gw_interest_kind_t kind, const char *id)
{
    char buf[128];
    char *key = subwait_key(buf, sizeof(buf), kind, id);
    ck_hs_t *t = (ck_hs_t *)&sw->table;
    void *k = ck_hs_get(t, CK_HS_HASH(t, gw_hs_hash, key), key);

    if (key != buf)
        free(key);
    return k != NULL ? SUBWAIT_ENTRY_OF(k) : NULL;
}

static void subwait_unlink(gw_subwait_t *sw, subwait_wait_t *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        sw->first = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        sw->last = w->prev;
    sw->held--;
}

/* Out of the due list and onto the ready one, told at subwait_tell. */
static void subwait_due(gw_subwait_t *sw, subwait_wait_t *w)
{
    subwait_unlink(sw, w);
    w->next = sw->ready;
    sw->ready = w;
}

/* Tells the owner the answers made ready, in the order they were held
 * (the ready list is reversed), and frees them. */
static void subwait_tell(gw_subwait_t *sw, int late)
{
    subwait_wait_t *rev = NULL, *w;

    while ((w = sw->ready) != NULL) {
        sw->ready = w->next;
        w->next = rev;
        rev = w;
    }
    while ((w = rev) != NULL) {
        rev = w->next;
        sw->cb(sw->data, &w->a, late);
        subwait_wait_free(w);
    }
}

/* The entry lets go of every answer waiting for it; those left waiting
 * for nothing are ready. */
static void subwait_settle(gw_subwait_t *sw, subwait_entry_t *e)
{
    for (size_t i = 0; i < e->nwaits; i++) {
        subwait_wait_t *w = e->waits[i];
        for (size_t j = 0; j < w->non; j++)
            if (w->on[j] == e)
                w->on[j] = NULL;
        if (--w->left == 0)
            subwait_due(sw, w);
    }
    e->nwaits = 0;
}

static void subwait_remove(gw_subwait_t *sw, subwait_entry_t *e)
{
    ck_hs_remove(&sw->table, CK_HS_HASH(&sw->table, gw_hs_hash, e->key),
                 e->key);
    subwait_entry_free(e);
}

void gw_subwait_asked(gw_subwait_t *sw, gw_interest_kind_t kind, const char *id)
{
    subwait_entry_t *e = subwait_get(sw, kind, id);

    if (e == NULL) {
        size_t len = strlen(id);
        e = gw_calloc(1, sizeof(*e) + len + 2);
        e->key[0] = subwait_letter[kind];
        memcpy(e->key + 1, id, len + 1);
        ck_hs_put(&sw->table, CK_HS_HASH(&sw->table, gw_hs_hash, e->key),
                  e->key);
    }
    e->asked++;
    e->gone = 0;
}

void gw_subwait_confirmed(gw_subwait_t *sw, gw_interest_kind_t kind,
                          const char *id)
{
    subwait_entry_t *e = subwait_get(sw, kind, id);

    if (e == NULL || --e->asked > 0)
        return;
    subwait_settle(sw, e);
    subwait_remove(sw, e);
    subwait_tell(sw, 0);
}

void gw_subwait_released(gw_subwait_t *sw, gw_interest_kind_t kind,
                         const char *id)
{
    subwait_entry_t *e = subwait_get(sw, kind, id);

    if (e == NULL)
        return;
    e->gone = 1;
    subwait_settle(sw, e);
    subwait_tell(sw, 0);
}

int gw_subwait_idle(const gw_subwait_t *sw)
{
    return ck_hs_count((ck_hs_t *)&sw->table) == 0;
}

int gw_subwait_pending(const gw_subwait_t *sw, gw_interest_kind_t kind,
                       const char *id)
{
    const subwait_entry_t *e;

    if (gw_subwait_idle(sw))
        return 0;
    e = subwait_get(sw, kind, id);
    return e != NULL && !e->gone;
}

/* w waits for e too. */
static void subwait_attach(subwait_wait_t *w, subwait_entry_t *e)
{
    if (e->nwaits == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->waits = gw_realloc(e->waits, e->cap * sizeof(*e->waits));
    }
    e->waits[e->nwaits++] = w;
    w->on[w->non++] = e;
    w->left++;
}

static subwait_wait_t *subwait_wait_new(gw_subwait_t *sw,
                                        const gw_subwait_answer_t *a, size_t n,
                                        uint64_t now_ms)
{
    subwait_wait_t *w = gw_calloc(1, sizeof(*w));

    w->on = gw_malloc(n * sizeof(*w->on));
    w->a = *a;
    for (int i = 0; i < GW_SUBWAIT_MSGS && a->text[i] != NULL; i++) {
        w->text[i] = gw_malloc(a->len[i] + 1);
        memcpy(w->text[i], a->text[i], a->len[i]);
        w->text[i][a->len[i]] = '\0';
        w->a.text[i] = w->text[i];
    }
    w->due = now_ms + sw->wait_ms;
    w->prev = sw->last;
    if (sw->last != NULL)
        sw->last->next = w;
    else
        sw->first = w;
    sw->last = w;
    sw->held++;
    return w;
}

int gw_subwait_hold(gw_subwait_t *sw, const gw_subwait_answer_t *a,
                    const gw_interest_target_t *t, size_t n, uint64_t now_ms)
{
    subwait_wait_t *w = NULL;

    if (gw_subwait_idle(sw))
        return 0;
    for (size_t i = 0; i < n; i++) {
        subwait_entry_t *e = subwait_get(sw, t[i].kind, t[i].id);
        if (e == NULL || e->gone)
            continue;
        if (w == NULL)
            w = subwait_wait_new(sw, a, n, now_ms);
        subwait_attach(w, e);
    }
    return w != NULL;
}

/* w leaves the n entries of `on` (NULL ones skipped). */
static void subwait_detach(subwait_wait_t *w, subwait_entry_t **on, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        subwait_entry_t *e = on[i];
        if (e == NULL)
            continue;
        for (size_t j = 0; j < e->nwaits; j++) {
            if (e->waits[j] == w) {
                e->waits[j] = e->waits[--e->nwaits];
                break;
            }
        }
    }
}

void gw_subwait_cancel(gw_subwait_t *sw,
                       const uint8_t session[GW_SUBWAIT_ID_LEN])
{
    subwait_wait_t *w = sw->first, *next;

    for (; w != NULL; w = next) {
        next = w->next;
        if (memcmp(w->a.session, session, GW_SUBWAIT_ID_LEN) != 0)
            continue;
        subwait_detach(w, w->on, w->non);
        subwait_unlink(sw, w);
        subwait_wait_free(w);
    }
}

/*
 * The oldest answer, due: told late, alone, and the entries it waited for
 * are taken as confirmed (its link is down, or the broker's word was
 * lost: no later answer is to wait for them again); the answers that
 * waited for those alone are told after it.
 */
static void subwait_give_up(gw_subwait_t *sw)
{
    subwait_wait_t *w = sw->first;
    subwait_entry_t **on = w->on;
    size_t n = w->non;

    w->on = NULL;
    w->non = w->left = 0;
    subwait_detach(w, on, n);
    subwait_due(sw, w);
    subwait_tell(sw, 1);
    for (size_t i = 0; i < n; i++) {
        if (on[i] == NULL)
            continue;
        subwait_settle(sw, on[i]);
        subwait_remove(sw, on[i]);
    }
    free(on);
    subwait_tell(sw, 0);
}

size_t gw_subwait_expire(gw_subwait_t *sw, uint64_t now_ms)
{
    size_t n = 0;

    for (; sw->first != NULL && sw->first->due <= now_ms; n++)
        subwait_give_up(sw);
    return n;
}

size_t gw_subwait_held(const gw_subwait_t *sw)
{
    return sw->held;
}
