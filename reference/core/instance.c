/* instance: what every zolder command needs to find an instance (see instance.h). */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "xalloc.h"

#define INSTANCE_CONFIG_MAX (1u << 20)

bool instance_load_config(const char *path, struct zconf *conf, struct cfg_error *err)
{
    char *data;
    size_t len;
    char *dir = fs_dirname(path);
    zconf_defaults(conf, dir);
    free(dir);
    if (fs_read_file(path, INSTANCE_CONFIG_MAX, &data, &len) < 0) {
        cfg_error_set(err, path, 0, "cannot read config: %s", strerror(errno));
        return false;
    }
    bool ok = zconf_parse(conf, path, data, len, err) && zconf_validate(conf, err);
    free(data);
    return ok;
}

char *instance_control_path(const struct zconf *conf)
{
    size_t n = strlen(conf->state_dir) + 16;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/zolderd.ctl", conf->state_dir);
    return p;
}
