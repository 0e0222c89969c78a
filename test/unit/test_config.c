/*
 * Unit tests of the configuration (src/config.c). Run from the repository
 * root: one test loads conf/gateway.toml. Files are written to a mkdtemp
 * directory removed at the end.
 */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw/alloc.h"
#include "gw/config.h"
#include "gw/error.h"
#include "gw/toml.h"

static char tmpdir[] = "/tmp/gw_test_config_XXXXXX";

static int setup(void **state)
{
    (void)state;
    /* The runner's environment must not leak into the expectations. */
    unsetenv("GATEWAYD_JWT_SECRET");
    unsetenv("GATEWAYD_API_KEY");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    char path[512];
    (void)state;

    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    return rmdir(tmpdir);
}

/* Writes len bytes to tmpdir/name; returns the path (a static buffer). */
static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_conf(const char *text)
{
    return write_file("test.toml", text, strlen(text));
}

/* The dump of cfg as a heap string: compares whole configurations. */
static char *dump(const gw_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    gw_config_dump(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void set_ok(gw_config_t *cfg, const char *assignment)
{
    char err[256];

    if (gw_config_set(cfg, assignment, err, sizeof(err)) != 0)
        fail_msg("-s %s: %s", assignment, err);
    assert_string_equal(err, "");
}

static void test_defaults(void **state)
{
    gw_config_t cfg;
    (void)state;

    gw_config_init(&cfg);
    assert_string_equal(cfg.bind, "0.0.0.0");
    assert_int_equal(cfg.ws_port, 3005);
    assert_int_equal(cfg.http_port, 3006);
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.max_message_size, 65536);
    assert_int_equal(cfg.max_header_size, 8192);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.write_ring_size, 1024);
    assert_int_equal(cfg.heartbeat_interval_ms, 30000);
    assert_int_equal(cfg.max_guilds_per_session, 100);
    assert_string_equal(cfg.jwt_secret, "");
    assert_string_equal(
        cfg.jwt_algorithms,
        "HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384");
    assert_string_equal(cfg.jwt_public_keys, "");
    assert_string_equal(cfg.jwks_file, "");
    assert_int_equal(cfg.leeway_s, 0);
    assert_int_equal(cfg.expiry_warning_s, 60);
    assert_null(cfg.jwt_keys);
    assert_string_equal(cfg.jwt_audience, "");
    assert_string_equal(cfg.jwt_issuer, "");
    assert_string_equal(cfg.publish_api_key, "");
    assert_int_equal(cfg.max_body_size, 1048576);
    assert_int_equal(cfg.dashboard_auth, 0);
    assert_int_equal(cfg.queue_size, 65536);
    assert_string_equal(cfg.log_level, "info");
    gw_config_free(&cfg);
    assert_null(cfg.bind);
    gw_config_free(&cfg); /* freeing twice is harmless */
}

static void test_load_shipped_conf(void **state)
{
    gw_config_t cfg, def;
    char err[256];
    char *got, *want;
    (void)state;

    gw_config_init(&cfg);
    gw_config_init(&def);
    if (gw_config_load(&cfg, "conf/gateway.toml", err, sizeof(err)) != 0)
        fail_msg("%s", err);
    /* The development secret gwctl refuses without --dev. */
    assert_string_equal(cfg.jwt_secret, GW_CONFIG_DEV_JWT_SECRET);
    assert_string_equal(cfg.publish_api_key, "dev-publish-key");
    /* Everything else is at its default. */
    set_ok(&def, "auth.jwt_secret=dev-secret-change-me");
    set_ok(&def, "http.publish_api_key=dev-publish-key");
    got = dump(&cfg);
    want = dump(&def);
    assert_string_equal(got, want);
    free(got);
    free(want);
    gw_config_free(&cfg);
    gw_config_free(&def);
}

/* Reads the non-table keys of a TOML text, in order, one per line. */
static char *keys_of(const char *text, size_t len)
{
    gw_toml_doc_t doc;
    gw_toml_error_t err;
    char *keys = gw_malloc(len + 1);
    size_t n = 0;

    if (gw_toml_parse(text, len, &doc, &err) != 0)
        fail_msg("line %u: %s", err.line, err.msg);
    for (size_t i = 0; i < doc.n; i++)
        if (doc.entries[i].type != GW_TOML_TABLE)
            n += (size_t)sprintf(keys + n, "%s\n", doc.entries[i].key);
    keys[n] = '\0';
    gw_toml_free(&doc);
    return keys;
}

/* The shipped file names every option, in table order, each commented. */
static void test_shipped_conf_documents_every_option(void **state)
{
    gw_config_t cfg;
    char *conf = NULL, *text, *want, *got, *line, *prev = NULL, *save;
    size_t len = 0;
    FILE *f = fopen("conf/gateway.toml", "r");
    (void)state;

    assert_non_null(f);
    assert_int_not_equal(getdelim(&conf, &len, '\0', f), -1);
    fclose(f);
    gw_config_init(&cfg);
    text = dump(&cfg);
    want = keys_of(text, strlen(text));
    got = keys_of(conf, strlen(conf));
    assert_string_equal(got, want);
    for (line = strtok_r(conf, "\n", &save); line != NULL;
         prev = line, line = strtok_r(NULL, "\n", &save))
        if (line[0] != '#' && line[0] != '[' && strchr(line, '=') != NULL)
            if (prev == NULL || prev[0] != '#')
                fail_msg("no comment above '%s'", line);
    free(conf);
    free(text);
    free(want);
    free(got);
    gw_config_free(&cfg);
}

/* What the dump writes loads back to the same configuration. */
static void test_dump_round_trip(void **state)
{
    gw_config_t cfg, back;
    char err[256];
    char *first, *second;
    (void)state;

    gw_config_init(&cfg);
    set_ok(&cfg, "server.bind=q\"b\\s\tt\x01 \xc3\xa9");
    set_ok(&cfg, "server.ws_port=1");
    set_ok(&cfg, "server.http_port=65535");
    set_ok(&cfg, "server.workers=256");
    set_ok(&cfg, "websocket.max_message_size=4294967295");
    set_ok(&cfg, "websocket.write_ring_size=8");
    set_ok(&cfg, "auth.jwt_issuer=#not a comment");
    set_ok(&cfg, "queues.queue_size=2147483648");
    set_ok(&cfg, "log.level=debug");
    first = dump(&cfg);

    gw_config_init(&back);
    if (gw_config_load(&back, write_conf(first), err, sizeof(err)) != 0)
        fail_msg("%s\n--- dump ---\n%s", err, first);
    assert_string_equal(back.bind, "q\"b\\s\tt\x01 \xc3\xa9");
    assert_int_equal(back.max_message_size, UINT32_MAX);
    second = dump(&back);
    assert_string_equal(second, first);
    free(first);
    free(second);
    gw_config_free(&cfg);
    gw_config_free(&back);
}

static void test_dump_redacts_secrets(void **state)
{
    gw_config_t cfg;
    char *text;
    (void)state;

    gw_config_init(&cfg);
    set_ok(&cfg, "auth.jwt_secret=s3cret-value");
    text = dump(&cfg);
    assert_non_null(strstr(text, "\njwt_secret = \"<redacted>\"\n"));
    assert_non_null(strstr(text, "\npublish_api_key = \"\"\n"));
    assert_null(strstr(text, "s3cret-value"));
    free(text);
    gw_config_free(&cfg);
}

/* A file sets what it names and keeps every other current value. */
static void test_load_over_current_values(void **state)
{
    gw_config_t cfg;
    char err[256];
    (void)state;

    gw_config_init(&cfg);
    set_ok(&cfg, "session.max_guilds_per_session=7");
    assert_int_equal(gw_config_load(&cfg,
                                    write_conf("# partial\n"
                                               "[log]\nlevel = 'warn'\n"
                                               "[server]\n"
                                               "ws_port = 8_080\n"
                                               "bind = \"127.0.0.1\"\n"
                                               "[queues]\n"
                                               "queue_size = +1024\n"),
                                    err, sizeof(err)),
                     0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.log_level, "warn");
    assert_int_equal(cfg.ws_port, 8080);
    assert_string_equal(cfg.bind, "127.0.0.1");
    assert_int_equal(cfg.queue_size, 1024);
    assert_int_equal(cfg.max_guilds_per_session, 7);
    assert_int_equal(cfg.http_port, 3006);
    gw_config_free(&cfg);
}

typedef struct bad_file {
    const char *text;
    int rc;
    const char *msg; /* what follows "<path>:" */
} bad_file_t;

static const bad_file_t bad_files[] = {
    /* bounds */
    {"[server]\n# c\nws_port = 70000\n", GW_EINVAL,
     "3: server.ws_port: 70000 is out of range 1..65535"},
    {"[server]\nws_port = 0\n", GW_EINVAL,
     "2: server.ws_port: 0 is out of range 1..65535"},
    {"[server]\nhttp_port = -1\n", GW_EINVAL,
     "2: server.http_port: -1 is out of range 1..65535"},
    {"[server]\nworkers = 257\n", GW_EINVAL,
     "2: server.workers: 257 is out of range 0..256"},
    {"[websocket]\nmax_message_size = 124\n", GW_EINVAL,
     "2: websocket.max_message_size: 124 is out of range 125..4294967295"},
    {"[websocket]\nmax_message_size = 4294967296\n", GW_EINVAL,
     "2: websocket.max_message_size: 4294967296 is out of range "
     "125..4294967295"},
    {"[websocket]\nmax_header_size = 65537\n", GW_EINVAL,
     "2: websocket.max_header_size: 65537 is out of range 1024..65536"},
    {"[websocket]\nwrite_ring_size = 7\n", GW_EINVAL,
     "2: websocket.write_ring_size: 7 is out of range 8..4294967295"},
    {"[session]\nheartbeat_interval_ms = 99\n", GW_EINVAL,
     "2: session.heartbeat_interval_ms: 99 is out of range 100..536870912"},
    {"[queues]\nqueue_size = 1\n", GW_EINVAL,
     "2: queues.queue_size: 1 is out of range 2..2147483648"},
    /* checks beyond bounds */
    {"[queues]\nqueue_size = 1000\n", GW_EINVAL,
     "2: queues.queue_size: 1000 is not a power of two"},
    {"[log]\nlevel = \"verbose\"\n", GW_EINVAL,
     "2: log.level: 'verbose' is not one of debug, info, warn, error"},
    {"[auth]\njwt_algorithms = \"RS256, PS256\"\n", GW_EINVAL,
     "2: auth.jwt_algorithms: 'RS256, PS256' is not a list of HS256, HS384, "
     "HS512, RS256, RS384, RS512, ES256, ES384"},
    {"[auth]\njwt_algorithms = \" , \"\n", GW_EINVAL,
     "2: auth.jwt_algorithms: ' , ' is not a list of HS256, HS384, HS512, "
     "RS256, RS384, RS512, ES256, ES384"},
    {"[tls]\nsni_certs = \"a.crt:a.key, b.crt\"\n", GW_EINVAL,
     "2: tls.sni_certs: 'a.crt:a.key, b.crt' is not a list of "
     "cert_file:key_file pairs"},
    {"[auth]\nleeway_s = 3601\n", GW_EINVAL,
     "2: auth.leeway_s: 3601 is out of range 0..3600"},
    /* names */
    {"[server]\nport = 1\n", GW_EINVAL, "2: server.port: unknown option"},
    {"ws_port = 1\n", GW_EINVAL, "1: ws_port: unknown option"},
    {"[auth]\njwt_algorithm = \"HS256\"\n", GW_EINVAL,
     "2: auth.jwt_algorithm: renamed auth.jwt_algorithms"},
    {"\n[servr]\n", GW_EINVAL, "2: [servr]: unknown table"},
    {"[server.tls]\n", GW_EINVAL, "1: [server.tls]: unknown table"},
    /* types */
    {"[server]\nws_port = \"3005\"\n", GW_EINVAL,
     "2: server.ws_port: expected an integer, got a string"},
    {"[server]\nworkers = true\n", GW_EINVAL,
     "2: server.workers: expected an integer, got a boolean"},
    {"[server]\nbind = 0\n", GW_EINVAL,
     "2: server.bind: expected a string, got an integer"},
    {"[server]\nbind = \"a\\u0000b\"\n", GW_EINVAL,
     "2: server.bind: string contains a NUL byte"},
    /* TOML errors keep the parser's message and line */
    {"[server]\n\nbind = \"x\n", GW_EPARSE,
     "3: server.bind: unterminated string"},
    {"[server]\nws_port = 3005.0\n", GW_EPARSE,
     "2: server.ws_port: unsupported value type (float)"},
    {"[server]\nws_port = 99999999999999999999\n", GW_ETOOBIG,
     "2: server.ws_port: invalid integer '99999999999999999999': does not fit "
     "in 64 bits"},
    {"[server]\nws_port = 1\nws_port = 2\n", GW_EPARSE,
     "3: duplicate key 'server.ws_port' (first set on line 2)"},
    /* an error after good lines still rejects the whole file */
    {"[server]\nws_port = 4000\nbind = \"::\"\n[log]\nlevel = 'loud'\n",
     GW_EINVAL, "5: log.level: 'loud' is not one of debug, info, warn, error"},
};

static void test_load_errors(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        const bad_file_t *c = &bad_files[i];
        const char *path = write_conf(c->text);
        char err[256], want[512];
        char *before, *after;
        gw_config_t cfg;
        int rc;

        gw_config_init(&cfg);
        before = dump(&cfg);
        rc = gw_config_load(&cfg, path, err, sizeof(err));
        snprintf(want, sizeof(want), "%s:%s", path, c->msg);
        if (rc != c->rc || strcmp(err, want) != 0)
            fail_msg("case %zu:\n got %d %s\nwant %d %s", i, rc, err, c->rc,
                     want);
        /* A rejected file changes nothing. */
        after = dump(&cfg);
        assert_string_equal(after, before);
        free(before);
        free(after);
        gw_config_free(&cfg);
    }
}

static void expect_load_error(const char *path, int rc, const char *msg)
{
    gw_config_t cfg;
    char err[256], want[512];

    gw_config_init(&cfg);
    assert_int_equal(gw_config_load(&cfg, path, err, sizeof(err)), rc);
    snprintf(want, sizeof(want), "%s: %s", path, msg);
    assert_string_equal(err, want);
    gw_config_free(&cfg);
}

static void test_load_io_errors(void **state)
{
    char missing[600], err[256];
    size_t big = 1 << 20;
    char *text = gw_malloc(big);
    gw_config_t cfg;
    (void)state;

    snprintf(missing, sizeof(missing), "%s/missing.toml", tmpdir);
    expect_load_error(missing, GW_EIO,
                      "cannot open: No such file or directory");
    expect_load_error(tmpdir, GW_EIO, "cannot read: Is a directory");

    /* One comment line just under the 1 MiB cap loads; at the cap not. */
    memset(text, '#', big);
    gw_config_init(&cfg);
    assert_int_equal(gw_config_load(&cfg, write_file("big.toml", text, big - 1),
                                    err, sizeof(err)),
                     0);
    gw_config_free(&cfg);
    expect_load_error(write_file("big.toml", text, big), GW_ETOOBIG,
                      "1048576 bytes or more; too large for a config");
    free(text);
}

static void test_env_overrides(void **state)
{
    gw_config_t cfg;
    char err[256];
    const char *text = "[auth]\njwt_secret = \"from-file\"\n"
                       "[http]\npublish_api_key = \"file-key\"\n";
    char path[512];
    (void)state;

    snprintf(path, sizeof(path), "%s",
             write_file("env.toml", text, strlen(text)));
    gw_config_init(&cfg);
    setenv("GATEWAYD_JWT_SECRET", "from-env", 1);
    setenv("GATEWAYD_API_KEY", "", 1); /* set but empty: disables /publish */
    assert_int_equal(gw_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_string_equal(cfg.jwt_secret, "from-env");
    assert_string_equal(cfg.publish_api_key, "");

    /* Applied by every load, even of a file that does not name them. */
    setenv("GATEWAYD_API_KEY", "env-key", 1);
    assert_int_equal(
        gw_config_load(&cfg, write_conf("# empty\n"), err, sizeof(err)), 0);
    assert_string_equal(cfg.publish_api_key, "env-key");

    unsetenv("GATEWAYD_JWT_SECRET");
    unsetenv("GATEWAYD_API_KEY");
    assert_int_equal(gw_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_string_equal(cfg.jwt_secret, "from-file");
    assert_string_equal(cfg.publish_api_key, "file-key");
    gw_config_free(&cfg);

    /* The environment alone, for a program with no file to read (gwctl). */
    gw_config_init(&cfg);
    setenv("GATEWAYD_API_KEY", "env-only", 1);
    assert_int_equal(gw_config_load_env(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.publish_api_key, "env-only");
    assert_string_equal(cfg.jwt_secret, "");
    unsetenv("GATEWAYD_API_KEY");
    gw_config_free(&cfg);
}

static void test_set(void **state)
{
    gw_config_t cfg;
    (void)state;

    gw_config_init(&cfg);
    set_ok(&cfg, "server.ws_port=4000");
    assert_int_equal(cfg.ws_port, 4000);
    set_ok(&cfg, "session.heartbeat_interval_ms=5_000");
    assert_int_equal(cfg.heartbeat_interval_ms, 5000);
    set_ok(&cfg, "server.workers=-0");
    assert_int_equal(cfg.workers, 0);
    /* Strings are taken raw: no quotes, no trimming, '=' allowed. */
    set_ok(&cfg, "auth.jwt_audience=a=b");
    assert_string_equal(cfg.jwt_audience, "a=b");
    set_ok(&cfg, "auth.jwt_secret= spaced \"x\" ");
    assert_string_equal(cfg.jwt_secret, " spaced \"x\" ");
    set_ok(&cfg, "server.bind=");
    assert_string_equal(cfg.bind, "");
    set_ok(&cfg, "log.level=error");
    assert_string_equal(cfg.log_level, "error");
    gw_config_free(&cfg);
}

static const bad_file_t bad_sets[] = {
    {"server.ws_port", GW_EPARSE,
     "-s:1: expected section.key=value, got 'server.ws_port'"},
    {"server.port=1", GW_EINVAL, "-s:1: server.port: unknown option"},
    {"server=1", GW_EINVAL, "-s:1: server: unknown option"},
    {" server.ws_port=1", GW_EINVAL, "-s:1:  server.ws_port: unknown option"},
    {"server.ws_port=abc", GW_EINVAL,
     "-s:1: server.ws_port: 'abc' is not an integer"},
    {"server.ws_port=", GW_EINVAL,
     "-s:1: server.ws_port: '' is not an integer"},
    {"server.ws_port= 80", GW_EINVAL,
     "-s:1: server.ws_port: ' 80' is not an integer"},
    {"server.ws_port=080", GW_EINVAL,
     "-s:1: server.ws_port: '080' is not an integer"},
    {"server.ws_port=70000", GW_EINVAL,
     "-s:1: server.ws_port: 70000 is out of range 1..65535"},
    {"server.ws_port=99999999999999999999", GW_EINVAL,
     "-s:1: server.ws_port: 99999999999999999999 is out of range 1..65535"},
    {"websocket.max_header_size=1023", GW_EINVAL,
     "-s:1: websocket.max_header_size: 1023 is out of range 1024..65536"},
    {"queues.queue_size=3000", GW_EINVAL,
     "-s:1: queues.queue_size: 3000 is not a power of two"},
    {"log.level=trace", GW_EINVAL,
     "-s:1: log.level: 'trace' is not one of debug, info, warn, error"},
    {"amqp.routing=keyed", GW_EINVAL,
     "-s:1: amqp.routing: 'keyed' is not one of all, targeted"},
    {"auth.jwt_algorithms=none", GW_EINVAL,
     "-s:1: auth.jwt_algorithms: 'none' is not a list of HS256, HS384, HS512, "
     "RS256, RS384, RS512, ES256, ES384"},
    {"server.proxy_trusted=10.0.0.1/8", GW_EINVAL,
     "-s:1: server.proxy_trusted: '10.0.0.1/8' is not a list of networks such "
     "as 10.0.0.0/8, ::1/128 (an address's bits past its prefix must be 0)"},
    {"server.proxy_trusted= ", GW_EINVAL,
     "-s:1: server.proxy_trusted: ' ' names no network"},
};

static void test_set_errors(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++) {
        const bad_file_t *c = &bad_sets[i];
        gw_config_t cfg;
        char err[256];
        char *before, *after;
        int rc;

        gw_config_init(&cfg);
        before = dump(&cfg);
        rc = gw_config_set(&cfg, c->text, err, sizeof(err));
        if (rc != c->rc || strcmp(err, c->msg) != 0)
            fail_msg("case %zu (%s):\n got %d %s\nwant %d %s", i, c->text, rc,
                     err, c->rc, c->msg);
        after = dump(&cfg);
        assert_string_equal(after, before);
        free(before);
        free(after);
        gw_config_free(&cfg);
    }
}

static void test_queue_size_power_of_two(void **state)
{
    gw_config_t cfg;
    char arg[64], err[256];
    (void)state;

    gw_config_init(&cfg);
    for (int k = 1; k <= 31; k++) {
        uint32_t size = UINT32_C(1) << k;
        snprintf(arg, sizeof(arg), "queues.queue_size=%" PRIu32, size);
        set_ok(&cfg, arg);
        assert_int_equal(cfg.queue_size, size);
        if (k >= 2) {
            snprintf(arg, sizeof(arg), "queues.queue_size=%" PRIu32, size + 1);
            assert_int_equal(gw_config_set(&cfg, arg, err, sizeof(err)),
                             GW_EINVAL);
            snprintf(arg, sizeof(arg), "queues.queue_size=%" PRIu32, size - 1);
            assert_int_equal(gw_config_set(&cfg, arg, err, sizeof(err)),
                             GW_EINVAL);
        }
    }
    gw_config_free(&cfg);
}

/* Error text is cut to errlen, and no buffer at all is fine too. */
/* Booleans: TOML true/false in files, "true"/"false" after -s, nothing
 * else in either. */
static void test_booleans(void **state)
{
    char err[256];
    gw_config_t cfg;
    (void)state;

    gw_config_init(&cfg);
    assert_int_equal(cfg.redis_enabled, 1);
    assert_int_equal(cfg.amqp_durable, 1);
    assert_int_equal(gw_config_load(&cfg,
                                    write_conf("[redis]\nenabled = false\n"),
                                    err, sizeof(err)),
                     0);
    assert_int_equal(cfg.redis_enabled, 0);
    set_ok(&cfg, "redis.enabled=true");
    assert_int_equal(cfg.redis_enabled, 1);
    set_ok(&cfg, "amqp.durable=false");
    assert_int_equal(cfg.amqp_durable, 0);
    assert_int_equal(gw_config_set(&cfg, "amqp.durable=1", err, sizeof(err)),
                     GW_EINVAL);
    assert_string_equal(err, "-s:1: amqp.durable: '1' is not true or false");
    assert_int_not_equal(gw_config_load(&cfg,
                                        write_conf("[amqp]\ndurable = 1\n"),
                                        err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "amqp.durable: expected a boolean, got an "
                                "integer"));
    assert_int_not_equal(
        gw_config_load(&cfg, write_conf("[server]\nworkers = true\n"), err,
                       sizeof(err)),
        0);
    assert_non_null(strstr(err, "expected an integer, got a boolean"));
    gw_config_free(&cfg);
}

static void test_error_buffer_sizes(void **state)
{
    gw_config_t cfg;
    char err[8];
    (void)state;

    gw_config_init(&cfg);
    memset(err, 'x', sizeof(err));
    assert_int_equal(gw_config_set(&cfg, "nope=1", err, sizeof(err)),
                     GW_EINVAL);
    assert_string_equal(err, "-s:1: n");
    assert_int_equal(gw_config_set(&cfg, "nope=1", NULL, 0), GW_EINVAL);
    assert_int_equal(gw_config_load(&cfg, write_conf("x = 1\n"), NULL, 0),
                     GW_EINVAL);
    assert_int_equal(gw_config_load(&cfg, write_conf("x = 1\n"), err, 3),
                     GW_EINVAL);
    assert_string_equal(err, "/t");
    gw_config_free(&cfg);
}

/* SIGHUP: what the running daemon can follow goes through, the rest is
 * held back at its running value and named. */
static void test_keep_restart_only(void **state)
{
    static const char *changes[] = {
        "server.ws_port=4000",         "redis.host=10.0.0.1",
        "amqp.durable=false",          "auth.jwt_secret=rotated",
        "session.event_rate=7",        "log.level=warn",
        "websocket.write_ring_size=64"};
    gw_config_t cur, next;
    char err[256], held[256];
    (void)state;

    gw_config_init(&cur);
    gw_config_init(&next);
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
        assert_int_equal(gw_config_set(&next, changes[i], err, sizeof(err)), 0);
    gw_config_keep_restart_only(&next, &cur, held, sizeof(held));
    assert_string_equal(held, "server.ws_port, redis.host, amqp.durable");
    assert_int_equal(next.ws_port, cur.ws_port);
    assert_string_equal(next.redis_host, cur.redis_host);
    assert_int_equal(next.amqp_durable, cur.amqp_durable);
    assert_string_equal(next.jwt_secret, "rotated");
    assert_int_equal(next.event_rate, 7);
    assert_string_equal(next.log_level, "warn");
    assert_int_equal(next.write_ring_size, 64);
    /* Nothing held back the second time; a short buffer is cut, not
     * overrun. */
    gw_config_keep_restart_only(&next, &cur, held, sizeof(held));
    assert_string_equal(held, "");
    assert_int_equal(gw_config_set(&next, "server.workers=3", err, sizeof(err)),
                     0);
    assert_int_equal(
        gw_config_set(&next, "queues.queue_size=1024", err, sizeof(err)), 0);
    gw_config_keep_restart_only(&next, &cur, held, 10);
    assert_int_equal(strlen(held), 9);
    assert_int_equal(next.workers, cur.workers);
    assert_int_equal(next.queue_size, cur.queue_size);
    gw_config_free(&cur);
    gw_config_free(&next);
}

/* Lines of a dump that set an option: one per row of the option table. */
static size_t count_options(const gw_config_t *cfg)
{
    char *text = dump(cfg), *save, *line;
    size_t n = 0;

    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
        n += line[0] != '#' && line[0] != '[' && strstr(line, " = ") != NULL;
    free(text);
    return n;
}

/* The reloadable flag of every row, pinned: each option is changed at once,
 * the reloadable ones go through and exactly the others are held back. */
static void test_reloadable_flag_of_every_option(void **state)
{
    /* Each list in table order, as the held-back names come out. */
    static const char *reloadable[] = {
        "server.max_connections_per_ip=10",
        "tls.cert_file=/etc/gw/cert.pem",
        "tls.key_file=/etc/gw/key.pem",
        "tls.key_password=pw",
        "tls.sni_certs=/etc/gw/a.crt:/etc/gw/a.key",
        "websocket.max_message_size=1000",
        "websocket.max_header_size=2048",
        "websocket.handshake_timeout_ms=5000",
        "websocket.allowed_origins=https://*.example.com",
        "websocket.write_ring_size=64",
        "session.max_guilds_per_session=50",
        "session.event_rate=7",
        "session.event_burst=9",
        "session.typing_limit=3",
        "session.typing_window_ms=5000",
        "session.resume_window_ms=1000",
        "session.replay_size=16",
        "session.replay_log_bytes=100000",
        "session.handoff_margin_ms=10",
        "session.handoff_timeout_ms=200",
        "auth.jwt_secret=rotated",
        "auth.jwt_algorithms=ES256",
        "auth.jwt_public_keys=/etc/gatewayd/k1.pem",
        "auth.jwks_file=/etc/gatewayd/jwks.json",
        "auth.leeway_s=30",
        "auth.expiry_warning_s=10",
        "auth.jwt_audience=aud",
        "auth.jwt_issuer=iss",
        "auth.identify_rate=3",
        "auth.identify_burst=4",
        "auth.identify_user_rate=5",
        "auth.identify_user_burst=6",
        "auth.fail_delay_ms=7",
        "auth.fail_limit=8",
        "auth.fail_block_ms=9",
        "http.publish_api_key=rotated-key",
        "http.dashboard_auth=true",
        "relay.events=chat.*",
        "relay.limit=5",
        "relay.window_ms=2000",
        "sync.key_template=s:{userId}",
        "sync.limit=2",
        "sync.window_ms=3000",
        "presence.guild_limit=7",
        "log.level=warn",
        "log.format=json",
        "log.audit=false",
    };
    static const char *restart_only[] = {
        "server.bind=127.0.0.1",
        "server.ws_port=4000",
        "server.http_port=4001",
        "server.workers=3",
        "server.drain_ms=5000",
        "server.max_connections=100",
        "server.proxy_protocol=true",
        "server.proxy_trusted=10.0.0.0/8",
        "server.io_uring=off",
        "tls.enabled=true",
        "tls.port=4443",
        "tls.proxy_protocol=true",
        "tls.handshake_us_per_turn=500",
        "tls.buffer_release_ms=500",
        "session.heartbeat_interval_ms=20000",
        "session.handoff=false",
        "session.handoff_wait_ms=100",
        "http.max_body_size=2048",
        "broker.instance_id=gw2",
        "broker.reconnect_min_ms=200",
        "broker.reconnect_max_ms=20000",
        "redis.enabled=false",
        "redis.host=10.0.0.1",
        "redis.port=6380",
        "redis.password=pw",
        "redis.channel=other",
        "redis.targeted=false",
        "redis.unsubscribe_linger_ms=10",
        "redis.subscribe_wait_ms=5",
        "redis.max_user_channels=8",
        "redis.cluster=true",
        "redis.cluster_nodes=10.0.0.1:7000",
        "amqp.enabled=false",
        "amqp.host=10.0.0.2",
        "amqp.port=5673",
        "amqp.user=u",
        "amqp.password=p",
        "amqp.vhost=/v",
        "amqp.exchange=ex",
        "amqp.binding_keys=a.*",
        "amqp.routing=targeted",
        "amqp.queue_prefix=q.",
        "amqp.durable=false",
        "amqp.prefetch=10",
        "amqp.upstream_exchange=up",
        "relay.max_unconfirmed=10",
        "presence.enabled=false",
        "presence.offline_grace_ms=100",
        "presence.instance_ttl_ms=2000",
        "presence.key_prefix=p:",
        "queues.queue_size=1024",
    };
    const size_t nreload = sizeof(reloadable) / sizeof(reloadable[0]);
    const size_t nrestart = sizeof(restart_only) / sizeof(restart_only[0]);
    gw_config_t cur, next, want;
    char held[1024], names[1024];
    char *got_dump, *want_dump;
    size_t n = 0;
    (void)state;

    gw_config_init(&cur);
    gw_config_init(&next);
    gw_config_init(&want);
    /* Every option is in one of the lists. */
    assert_int_equal(count_options(&cur), nreload + nrestart);
    for (size_t i = 0; i < nreload; i++) {
        set_ok(&next, reloadable[i]);
        set_ok(&want, reloadable[i]);
    }
    for (size_t i = 0; i < nrestart; i++) {
        set_ok(&next, restart_only[i]);
        n += (size_t)snprintf(
            names + n, sizeof(names) - n, "%s%.*s", i > 0 ? ", " : "",
            (int)strcspn(restart_only[i], "="), restart_only[i]);
    }

    gw_config_keep_restart_only(&next, &cur, held, sizeof(held));
    assert_string_equal(held, names);
    got_dump = dump(&next);
    want_dump = dump(&want);
    assert_string_equal(got_dump, want_dump);
    /* The dump redacts secrets: compare them here. */
    assert_string_equal(next.jwt_secret, "rotated");
    assert_string_equal(next.publish_api_key, "rotated-key");
    assert_string_equal(next.tls_key_password, "pw");
    assert_string_equal(next.redis_password, cur.redis_password);
    assert_string_equal(next.amqp_password, cur.amqp_password);
    free(got_dump);
    free(want_dump);
    gw_config_free(&cur);
    gw_config_free(&next);
    gw_config_free(&want);
}

/* What a Redis Cluster cannot serve is refused once every source is
 * applied, with what to set; the seed list is checked item by item. */
static void test_cluster_check(void **state)
{
    gw_config_t cfg;
    char err[256];
    (void)state;

    gw_config_init(&cfg);
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), 0);
    set_ok(&cfg, "redis.cluster=true");
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), GW_EINVAL);
    assert_string_equal(err, "configuration: redis.cluster: presence "
                             "(presence.enabled) and the drain handoff "
                             "(session.handoff) need a single Redis node; set "
                             "both to false to run on a Redis Cluster");
    set_ok(&cfg, "presence.enabled=false");
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), GW_EINVAL);
    assert_non_null(strstr(err, "set session.handoff to false"));
    set_ok(&cfg, "session.handoff=false");
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    set_ok(&cfg, "presence.enabled=true");
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), GW_EINVAL);
    assert_non_null(strstr(err, "set presence.enabled to false"));
    /* Without Redis there is no cluster to refuse. */
    set_ok(&cfg, "redis.enabled=false");
    assert_int_equal(gw_config_check(&cfg, err, sizeof(err)), 0);
    set_ok(&cfg, "redis.cluster_nodes=127.0.0.1:7000, [::1]:7001,r1:7002");
    assert_int_equal(
        gw_config_set(&cfg, "redis.cluster_nodes=127.0.0.1", err, sizeof(err)),
        GW_EINVAL);
    assert_string_equal(err, "-s:1: redis.cluster_nodes: '127.0.0.1' is not "
                             "a list of host:port ([v6]:port for an IPv6 "
                             "address)");
    assert_string_equal(cfg.redis_cluster_nodes,
                        "127.0.0.1:7000, [::1]:7001,r1:7002");
    gw_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_shipped_conf),
        cmocka_unit_test(test_shipped_conf_documents_every_option),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_dump_redacts_secrets),
        cmocka_unit_test(test_load_over_current_values),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_io_errors),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_queue_size_power_of_two),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_error_buffer_sizes),
        cmocka_unit_test(test_keep_restart_only),
        cmocka_unit_test(test_reloadable_flag_of_every_option),
        cmocka_unit_test(test_cluster_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
