/*
 * Error codes shared by every module. Functions return 0 or one of these
 * negative values; asynchronous results arrive as a `status` argument.
 */
#ifndef GW_ERROR_H
#define GW_ERROR_H

typedef enum gw_err {
    GW_OK = 0,
    /* input */
    GW_EPARSE = -1,  /* malformed input */
    GW_EINVAL = -2,  /* well-formed but invalid value */
    GW_ETOOBIG = -3, /* exceeds a configured limit */
    GW_EAGAIN = -4,  /* need more input */
    /* authentication */
    GW_EAUTH = -10,    /* signature or claims rejected */
    GW_EEXPIRED = -11, /* token past exp */
    GW_ENOTYET = -12,  /* token before nbf */
    GW_EALG = -13,     /* algorithm not accepted */
    GW_ENOKEY = -14,   /* no key for the token (kid unknown) */
    GW_ELIMITED = -15, /* too many attempts: try again later */
    /* resources */
    GW_EFULL = -20,   /* bounded queue or ring is full */
    GW_EIO = -21,     /* system call failed; errno is logged */
    GW_ECLOSED = -22, /* peer or link is gone */
    GW_ENOENT = -23,  /* no such thing here */
} gw_err_t;

/* A static, human-readable description of `err`. */
const char *gw_strerror(int err);

#endif
