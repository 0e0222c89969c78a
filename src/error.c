#include "gw/error.h"

const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK: return "success";
    case GW_EPARSE: return "malformed input";
    case GW_EINVAL: return "invalid value";
    case GW_ETOOBIG: return "exceeds limit";
    case GW_EAGAIN: return "need more input";
    case GW_EAUTH: return "authentication failed";
    case GW_EEXPIRED: return "token expired";
    case GW_ENOTYET: return "token not yet valid";
    case GW_EALG: return "algorithm not accepted";
    case GW_ENOKEY: return "no key for the token";
    case GW_ELIMITED: return "too many attempts";
    case GW_EFULL: return "queue full";
    case GW_EIO: return "i/o error";
    case GW_ECLOSED: return "closed";
    case GW_ENOENT: return "not found";
    }
    return "unknown error";
}
