/*
 * The backend envelope of gwctl publish (README, "The backend envelope"),
 * built from the options: one target, the event, its data and the
 * optional fields. Pure.
 */
#ifndef CTL_ENVELOPE_H
#define CTL_ENVELOPE_H

#include "args.h"

#include <stddef.h>

/*
 * Builds the envelope of o with data[0..len) (NULL for none) as its data:
 * 0 with *out its compact JSON text (heap, the caller frees it), or
 * GW_EINVAL with what is wrong with the options in err (no target or two,
 * no event, data not a JSON object).
 */
int ctl_envelope_build(const ctl_opts_t *o, const char *data, size_t len,
                       char **out, char *err, size_t errlen);

#endif
